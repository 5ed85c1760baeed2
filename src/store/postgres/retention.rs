//! Retention in PostgreSQL, with the SQLite store's rules (`store/retention.rs`): raw readings
//! and events by age in event time (against the fleet clock), rollups by their longer age; a pass
//! that would delete more than `retention_max_share` of a table's time span leaves it alone; the
//! small tables follow the rollups' age, status history, city levels and dead letters are capped,
//! and unregistered sites whose data aged out are forgotten.

use crate::store::config::StoreConfig;
use crate::store::retention::{
    aged_tables, judge, Cuts, Verdict, EMPTY_SITE_GRACE_MS, MAX_CITY_LEVELS, MAX_STATUS_HISTORY,
};
use crate::store::schema::ROLLUPS;
use crate::store::{RetentionReport, StoreError};
use dustwatch_protocol::time::DAY;
use postgres::Transaction;

/// One pass in the caller's transaction: the report and the unregistered sites it deleted.
pub(super) fn apply(
    tx: &mut Transaction,
    config: &StoreConfig,
    now_ms: i64,
    wall_ms: i64,
) -> Result<(RetentionReport, Vec<String>), StoreError> {
    let Cuts {
        raw: raw_cut,
        rollup: rollup_cut,
    } = Cuts::new(config, now_ms);
    let mut report = RetentionReport::default();
    for (table, column, cut) in aged_tables(raw_cut, rollup_cut) {
        let oldest: Vec<i64> = tx
            .query(
                &format!("SELECT min({column}) FROM {table} GROUP BY site"),
                &[],
            )?
            .iter()
            .filter_map(|r| r.get::<_, Option<i64>>(0))
            .collect();
        match judge(config, table, oldest.into_iter(), cut, now_ms) {
            Verdict::Nothing => continue,
            Verdict::Refused(r) => {
                report.refused.push(r);
                continue;
            }
            Verdict::Cut => {}
        }
        report.deleted +=
            tx.execute(&format!("DELETE FROM {table} WHERE {column} < $1"), &[&cut])?;
    }
    if !report.refused.iter().any(|r| r.table == "readings") {
        report.deleted += tx.execute("DELETE FROM outbox WHERE ts < $1", &[&raw_cut])?;
    }
    let rollups_ok = !report
        .refused
        .iter()
        .any(|r| ROLLUPS.iter().any(|(t, _)| *t == r.table));
    if rollups_ok {
        report.deleted += age_out_small_tables(tx, rollup_cut)?;
    }
    report.deleted += tx.execute(
        "DELETE FROM status_history WHERE id <= (SELECT max(id) FROM status_history) - $1",
        &[&MAX_STATUS_HISTORY],
    )?;
    report.deleted += tx.execute(
        "DELETE FROM city_levels WHERE ts < (SELECT ts FROM city_levels ORDER BY ts DESC \
         LIMIT 1 OFFSET $1)",
        &[&(MAX_CITY_LEVELS - 1)],
    )?;
    let max_dead = i64::try_from(config.max_dead_letters).unwrap_or(i64::MAX);
    report.deleted += tx.execute(
        "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - $1",
        &[&max_dead],
    )?;
    let gone = forget_empty_sites(tx, raw_cut, wall_ms)?;
    report.deleted += gone.len() as u64;
    Ok((report, gone))
}

/// Closed alerts, their history, city levels and daily figures older than the rollups.
fn age_out_small_tables(tx: &mut Transaction, cut: i64) -> Result<u64, StoreError> {
    let mut deleted = tx.execute(
        "DELETE FROM alert_history WHERE alert_id IN \
         (SELECT id FROM alerts WHERE state = 'closed' AND closed_ts < $1)",
        &[&cut],
    )?;
    deleted += tx.execute(
        "DELETE FROM alerts WHERE state = 'closed' AND closed_ts < $1",
        &[&cut],
    )?;
    // Keep the level in force at the cut: the newest change before it.
    deleted += tx.execute(
        "DELETE FROM city_levels WHERE ts < (SELECT max(ts) FROM city_levels WHERE ts < $1)",
        &[&cut],
    )?;
    // A day before the cut's UTC date (a local day never starts more than 14 h away from it).
    if let Some(date) = chrono::DateTime::from_timestamp_millis(cut - DAY) {
        deleted += tx.execute(
            "DELETE FROM daily_stats WHERE date < $1",
            &[&date.date_naive().to_string()],
        )?;
    }
    Ok(deleted)
}

/// Unregistered sites whose newest reading is older than the raw cut, or that never had a
/// reading or an event and were not heard from for a day: gone with their devices.
fn forget_empty_sites(
    tx: &mut Transaction,
    raw_cut: i64,
    wall_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = tx.query(
        "SELECT s.id FROM sites s LEFT JOIN latest l ON l.site = s.id \
         WHERE NOT s.registered AND CASE WHEN l.ts IS NOT NULL THEN l.ts < $1::int8 ELSE \
         NOT EXISTS (SELECT 1 FROM events e WHERE e.site = s.id) AND \
         coalesce((SELECT max(last_seen_ms) FROM devices d WHERE d.site = s.id), $2::int8 - 1) < $2::int8 \
         END",
        &[&raw_cut, &(wall_ms - EMPTY_SITE_GRACE_MS)],
    )?;
    let gone: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if gone.is_empty() {
        return Ok(gone);
    }
    for sql in [
        "DELETE FROM readings WHERE site = ANY($1)",
        "DELETE FROM events WHERE site = ANY($1)",
        "DELETE FROM devices WHERE site = ANY($1)",
        "DELETE FROM latest WHERE site = ANY($1)",
        "DELETE FROM sites WHERE id = ANY($1) AND NOT registered",
    ] {
        tx.execute(sql, &[&gone])?;
    }
    Ok(gone)
}
