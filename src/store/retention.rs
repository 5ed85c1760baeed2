//! Retention: every table that grows is bounded, by age in event time (against the fleet clock)
//! or by a row cap. A pass that would delete more than `retention_max_share` of a table's time
//! span leaves that table alone and says why: a clock gone wrong must never empty the store.

use super::config::StoreConfig;
use super::schema::ROLLUPS;
use super::{RetentionRefused, RetentionReport, StoreError};
use dustwatch_protocol::time::DAY;
use rusqlite::{params, Transaction};

/// Status changes kept in all: a flapping device cannot grow the history without bound.
pub(super) const MAX_STATUS_HISTORY: i64 = 100_000;
/// City level changes kept in all (older ones also go with the rollups' age).
pub(super) const MAX_CITY_LEVELS: i64 = 10_000;
/// An unregistered site without data is kept this long after its devices were last heard
/// (wall clock), so a device that sent only its status is not forgotten at once.
pub(super) const EMPTY_SITE_GRACE_MS: i64 = DAY;

/// A site as retention sees it.
pub(super) struct SiteAge<'a> {
    pub id: &'a str,
    pub registered: bool,
    /// Event time of its newest reading.
    pub newest_ts: Option<i64>,
}

/// Where retention cuts, relative to the fleet clock `now_ms`: raw data and rollups.
pub(super) struct Cuts {
    pub(super) raw: i64,
    pub(super) rollup: i64,
}

impl Cuts {
    pub(super) fn new(config: &StoreConfig, now_ms: i64) -> Cuts {
        Cuts {
            raw: now_ms.saturating_sub(i64::from(config.raw_retention_days) * DAY),
            rollup: now_ms.saturating_sub(i64::from(config.rollup_retention_days) * DAY),
        }
    }
}

/// The tables that age by event time: (table, time column, cut).
pub(super) fn aged_tables(raw_cut: i64, rollup_cut: i64) -> Vec<(&'static str, &'static str, i64)> {
    let mut by_age = vec![("readings", "ts", raw_cut), ("events", "ts", raw_cut)];
    by_age.extend(
        ROLLUPS
            .iter()
            .map(|(table, _)| (*table, "bucket", rollup_cut)),
    );
    by_age
}

/// One pass over every table, in the caller's transaction. Returns the report and the
/// unregistered sites it deleted (the caller forgets them).
pub(super) fn apply(
    tx: &Transaction,
    config: &StoreConfig,
    sites: &[SiteAge],
    now_ms: i64,
    wall_ms: i64,
) -> Result<(RetentionReport, Vec<String>), StoreError> {
    let Cuts {
        raw: raw_cut,
        rollup: rollup_cut,
    } = Cuts::new(config, now_ms);
    let mut report = RetentionReport::default();

    for (table, column, cut) in aged_tables(raw_cut, rollup_cut) {
        // Per site, so each statement is a range on the key instead of a full scan.
        let mut oldest: Vec<(&str, i64)> = Vec::with_capacity(sites.len());
        for site in sites {
            let t: Option<i64> = tx
                .prepare_cached(&format!(
                    "SELECT min({column}) FROM {table} WHERE site = ?1"
                ))?
                .query_row(params![site.id], |r| r.get(0))?;
            oldest.extend(t.map(|t| (site.id, t)));
        }
        match judge(config, table, oldest.iter().map(|(_, t)| *t), cut, now_ms) {
            Verdict::Nothing => continue,
            Verdict::Refused(r) => {
                report.refused.push(r);
                continue;
            }
            Verdict::Cut => {}
        }
        for (site, t) in oldest {
            if t < cut {
                report.deleted += tx
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE site = ?1 AND {column} < ?2"
                    ))?
                    .execute(params![site, cut])? as u64;
            }
        }
    }
    // Export rows of records older than the raw retention: their readings and events are gone,
    // so an exporter that was down that long could not send them anyway (and must not leave the
    // outbox to grow without bound).
    if !report.refused.iter().any(|r| r.table == "readings") {
        report.deleted += tx
            .prepare_cached("DELETE FROM outbox WHERE ts < ?1")?
            .execute(params![raw_cut])? as u64;
    }
    // Rollups are 'refused' above when their span is suspicious; the smaller tables follow
    // the rollups' age only when the rollups were not refused.
    let rollups_ok = !report
        .refused
        .iter()
        .any(|r| ROLLUPS.iter().any(|(t, _)| *t == r.table));
    if rollups_ok {
        report.deleted += age_out_small_tables(tx, rollup_cut)?;
    }
    report.deleted += tx.execute(
        "DELETE FROM status_history WHERE id <= (SELECT max(id) FROM status_history) - ?1",
        params![MAX_STATUS_HISTORY],
    )? as u64;
    report.deleted += tx.execute(
        "DELETE FROM city_levels WHERE ts < (SELECT ts FROM city_levels ORDER BY ts DESC \
         LIMIT 1 OFFSET ?1)",
        params![MAX_CITY_LEVELS - 1],
    )? as u64;
    report.deleted += super::dead_letters::trim_all(tx, config.max_dead_letters)?;
    let gone = forget_empty_sites(tx, sites, raw_cut, wall_ms)?;
    report.deleted += gone.len() as u64;
    Ok((report, gone))
}

/// Closed alerts, their history, city levels and daily figures older than the rollups.
fn age_out_small_tables(tx: &Transaction, cut: i64) -> Result<u64, StoreError> {
    let mut deleted = tx.execute(
        "DELETE FROM alert_history WHERE alert_id IN \
         (SELECT id FROM alerts WHERE state = 'closed' AND closed_ts < ?1)",
        params![cut],
    )?;
    deleted += tx.execute(
        "DELETE FROM alerts WHERE state = 'closed' AND closed_ts < ?1",
        params![cut],
    )?;
    // Keep the level in force at the cut: the newest change before it.
    deleted += tx.execute(
        "DELETE FROM city_levels WHERE ts < (SELECT max(ts) FROM city_levels WHERE ts < ?1)",
        params![cut],
    )?;
    // A day before the cut's UTC date (a local day never starts more than 14 h away from it).
    if let Some(date) = chrono::DateTime::from_timestamp_millis(cut - DAY) {
        deleted += tx.execute(
            "DELETE FROM daily_stats WHERE date < ?1",
            params![date.date_naive().to_string()],
        )?;
    }
    Ok(deleted as u64)
}

/// Unregistered sites whose data has aged out (or that never had any and were not heard from
/// for a day): gone with their devices, so messages on made-up topics do not pile up sites.
fn forget_empty_sites(
    tx: &Transaction,
    sites: &[SiteAge],
    raw_cut: i64,
    wall_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let mut gone = Vec::new();
    for site in sites.iter().filter(|s| !s.registered) {
        let stale = match site.newest_ts {
            Some(ts) => ts < raw_cut,
            None => {
                let heard: Option<i64> = tx
                    .prepare_cached("SELECT max(last_seen_ms) FROM devices WHERE site = ?1")?
                    .query_row(params![site.id], |r| r.get(0))?;
                let has_events: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE site = ?1)")?
                    .query_row(params![site.id], |r| r.get(0))?;
                !has_events && heard.is_none_or(|t| t < wall_ms - EMPTY_SITE_GRACE_MS)
            }
        };
        if !stale {
            continue;
        }
        for sql in [
            "DELETE FROM readings WHERE site = ?1",
            "DELETE FROM events WHERE site = ?1",
            "DELETE FROM devices WHERE site = ?1",
            "DELETE FROM latest WHERE site = ?1",
            "DELETE FROM sites WHERE id = ?1 AND registered = 0",
        ] {
            tx.prepare_cached(sql)?.execute(params![site.id])?;
        }
        gone.push(site.id.to_string());
    }
    Ok(gone)
}

/// What a pass may do to one aged table.
pub(super) enum Verdict {
    /// Nothing in it is older than the cut.
    Nothing,
    /// The cut would delete more than `[store] retention_max_share` of it: left alone.
    Refused(RetentionRefused),
    Cut,
}

/// Judge the cut of `table` from each site's oldest row time.
pub(super) fn judge(
    config: &StoreConfig,
    table: &'static str,
    oldest: impl Iterator<Item = i64>,
    cut: i64,
    now_ms: i64,
) -> Verdict {
    let share = share_deleted(oldest, cut, now_ms);
    if share == 0.0 {
        Verdict::Nothing
    } else if share > config.retention_max_share {
        Verdict::Refused(RetentionRefused {
            table,
            share,
            limit: config.retention_max_share,
            cut_ms: cut,
            now_ms,
        })
    } else {
        Verdict::Cut
    }
}

/// The share of the tables' time span (per site, from its oldest row to `now`) that lies
/// before `cut`: rows come at a steady rate, so this estimates the share of rows deleted
/// without counting the whole table.
pub(super) fn share_deleted(oldest: impl Iterator<Item = i64>, cut: i64, now: i64) -> f64 {
    let (mut gone, mut span) = (0i128, 0i128);
    for t in oldest {
        let whole = i128::from(now) - i128::from(t);
        if whole <= 0 {
            continue;
        }
        span += whole;
        gone += (i128::from(cut) - i128::from(t)).clamp(0, whole);
    }
    if span == 0 {
        // Everything is at or after `now`: nothing to delete unless the cut passed it too.
        return 0.0;
    }
    gone as f64 / span as f64
}

#[cfg(test)]
mod tests {
    use super::share_deleted;

    #[test]
    fn share_of_the_span() {
        let day = super::DAY;
        // 30 days kept, 31 held: a thirty-first deleted.
        let s = share_deleted([0, 0].into_iter(), day, 31 * day);
        assert!((s - 1.0 / 31.0).abs() < 1e-9);
        // A clock in 2099: the cut is past everything.
        assert_eq!(share_deleted([0].into_iter(), 4 * day, 3 * day), 1.0);
        assert_eq!(share_deleted([5 * day].into_iter(), day, 10 * day), 0.0);
        assert_eq!(share_deleted(std::iter::empty(), 0, 1), 0.0);
    }
}
