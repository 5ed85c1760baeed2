//! How far the rules engine judged each site, saved beside its alert changes: an engine taking
//! the site over (after a failover or a restart) replays quietly up to here and judges from here
//! on, so what was decided is neither decided again nor skipped.

use super::StoreError;
use rusqlite::{params, Connection};
use std::collections::HashMap;

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

#[cfg(test)]
mod tests {
    use crate::store::{AlertStore, AlertWriter, SqliteStore, StoreConfig};

    #[test]
    fn progress_is_saved_per_site_and_never_moves_back() {
        let dir = tempfile::tempdir().expect("dir");
        // The store creates the schema; the alert writer opens the same file.
        let _store = SqliteStore::open(
            StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            false,
        )
        .expect("store");
        let mut alerts = AlertStore::open(dir.path()).expect("alert store");
        alerts
            .save_progress(&[("s1".into(), 120_000), ("s2".into(), 60_000)])
            .expect("save");
        alerts
            .save_progress(&[("s1".into(), 60_000), ("s2".into(), 180_000)])
            .expect("save again");
        let p = alerts.progress().expect("load");
        assert_eq!(p.get("s1"), Some(&120_000));
        assert_eq!(p.get("s2"), Some(&180_000));
        assert_eq!(p.len(), 2);
    }
}
