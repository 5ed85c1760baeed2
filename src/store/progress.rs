//! How far the rules engine judged each site, saved beside its alert changes: an engine taking
//! the site over (after a failover or a restart) replays quietly up to here and judges from here
//! on, so what was decided is neither decided again nor skipped.

use super::StoreError;
use rusqlite::{params, Connection};
use std::collections::HashMap;

/// Schema 10.
pub const DDL: &str = "CREATE TABLE IF NOT EXISTS rule_progress (
    site TEXT PRIMARY KEY,
    judged_to INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Save (site, judged-to minute) pairs; a site's progress never moves back.
pub fn save(conn: &mut Connection, progress: &[(String, i64)]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO rule_progress (site, judged_to) VALUES (?1, ?2) \
             ON CONFLICT (site) DO UPDATE SET judged_to = max(judged_to, excluded.judged_to)",
        )?;
        for (site, judged_to) in progress {
            stmt.execute(params![site, judged_to])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn load(conn: &Connection) -> Result<HashMap<String, i64>, StoreError> {
    let mut stmt = conn.prepare("SELECT site, judged_to FROM rule_progress")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
}
