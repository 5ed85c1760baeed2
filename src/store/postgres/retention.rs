//! Retention in PostgreSQL, as in SQLite: raw readings and events by age in event time (against
//! the fleet clock), rollups by their longer age, status history and city levels by count; a pass
//! that would delete more than `retention_max_share` of a table's time span leaves it alone.

use crate::store::config::StoreConfig;
use crate::store::retention::share_deleted;
use crate::store::schema::ROLLUPS;
use crate::store::{RetentionRefused, RetentionReport, StoreError};
use postgres::Transaction;

const DAY_MS: i64 = 86_400_000;
/// Status changes kept in all (as the SQLite store).
const MAX_STATUS_HISTORY: i64 = 100_000;

pub(super) fn apply(
    tx: &mut Transaction,
    config: &StoreConfig,
    now_ms: i64,
) -> Result<RetentionReport, StoreError> {
    let raw_cut = now_ms.saturating_sub(i64::from(config.raw_retention_days) * DAY_MS);
    let rollup_cut = now_ms.saturating_sub(i64::from(config.rollup_retention_days) * DAY_MS);
    let mut report = RetentionReport::default();
    let mut by_age: Vec<(&'static str, &'static str, i64)> =
        vec![("readings", "ts", raw_cut), ("events", "ts", raw_cut)];
    by_age.extend(
        ROLLUPS
            .iter()
            .map(|(table, _)| (*table, "bucket", rollup_cut)),
    );
    for (table, column, cut) in by_age {
        let oldest: Vec<i64> = tx
            .query(
                &format!("SELECT min({column}) FROM {table} GROUP BY site"),
                &[],
            )?
            .iter()
            .filter_map(|r| r.get::<_, Option<i64>>(0))
            .collect();
        let share = share_deleted(oldest.into_iter(), cut, now_ms);
        if share == 0.0 {
            continue;
        }
        if share > config.retention_max_share {
            report.refused.push(RetentionRefused {
                table,
                share,
                limit: config.retention_max_share,
                cut_ms: cut,
                now_ms,
            });
            continue;
        }
        report.deleted +=
            tx.execute(&format!("DELETE FROM {table} WHERE {column} < $1"), &[&cut])?;
    }
    report.deleted += tx.execute(
        "DELETE FROM status_history WHERE id <= (SELECT max(id) FROM status_history) - $1",
        &[&MAX_STATUS_HISTORY],
    )?;
    Ok(report)
}
