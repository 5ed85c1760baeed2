//! A target's side of the forwarding queue: its own SQLite connection, its cursor, the queued
//! readings after it (read back from `readings`), and pruning up to the slowest target.

use crate::store::forward_queue;
use crate::store::sqlite::db_path;
use crate::store::StoreError;
use dustwatch_protocol::{EventTime, Metric, Reading};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;

/// One queued reading; `reading` is `None` when retention removed it before it was sent.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub site: String,
    pub device: String,
    pub reading: Option<Reading>,
}

pub struct Queue {
    conn: Connection,
    name: String,
}

impl Queue {
    /// Open the store's database for target `name`. A target seen for the first time starts at
    /// the end of the queue: it forwards what is stored from now on, not the history.
    pub fn open(data_dir: &Path, name: &str) -> Result<Queue, StoreError> {
        let conn = Connection::open(db_path(data_dir))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        forward_queue::create(&conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO forward_cursor (name, last_id) \
             VALUES (?1, (SELECT coalesce(max(id), 0) FROM forward_queue))",
            params![name],
        )?;
        Ok(Queue {
            conn,
            name: name.to_string(),
        })
    }

    /// Forget the cursors of targets no longer configured, so they hold back no pruning.
    pub fn keep_only(&self, names: &[String]) -> Result<(), StoreError> {
        let names = serde_json::to_string(names).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "DELETE FROM forward_cursor WHERE name NOT IN (SELECT value FROM json_each(?1))",
            params![names],
        )?;
        Ok(())
    }

    pub fn cursor(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT coalesce((SELECT last_id FROM forward_cursor WHERE name = ?1), 0)",
            params![self.name],
            |r| r.get(0),
        )?)
    }

    /// Readings queued after `cursor` (ids rise by one per queued reading).
    pub fn backlog(&self, cursor: i64) -> Result<i64, StoreError> {
        let newest: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM forward_queue", [], |r| {
                    r.get(0)
                })?;
        Ok((newest - cursor).max(0))
    }

    /// Up to `limit` queued readings after `cursor`, oldest first.
    pub fn next(&self, cursor: i64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let cols: Vec<String> = Metric::ALL.iter().map(|m| format!("r.{m}")).collect();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT q.id, q.site, q.device, q.ts, q.boot, q.seq, r.interval_s, r.flags, {} \
             FROM forward_queue q LEFT JOIN readings r ON r.site = q.site AND r.ts = q.ts \
             AND r.device = q.device AND r.boot = q.boot AND r.seq = q.seq \
             WHERE q.id > ?1 ORDER BY q.id LIMIT ?2",
            cols.join(", ")
        ))?;
        let mut rows = stmt.query(params![cursor, limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let interval: Option<u32> = row.get(6)?;
            let reading = match interval {
                None => None,
                Some(interval_s) => {
                    let flags: Option<String> = row.get(7)?;
                    let mut r = Reading {
                        ts: EventTime(row.get(3)?),
                        boot: row.get(4)?,
                        seq: row.get(5)?,
                        interval_s,
                        flags: match flags {
                            Some(f) => serde_json::from_str(&f)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                            None => BTreeMap::new(),
                        },
                        ..Reading::default()
                    };
                    for (i, m) in Metric::ALL.into_iter().enumerate() {
                        r.set(m, row.get(8 + i)?);
                    }
                    Some(r)
                }
            };
            out.push(Queued {
                id: row.get(0)?,
                site: row.get(1)?,
                device: row.get(2)?,
                reading,
            });
        }
        Ok(out)
    }

    /// Record that everything up to `to` is done, and delete what every target is done with.
    pub fn advance(&mut self, to: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE forward_cursor SET last_id = max(last_id, ?2) WHERE name = ?1",
            params![self.name, to],
        )?;
        tx.execute(
            "DELETE FROM forward_queue WHERE id <= (SELECT min(last_id) FROM forward_cursor)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }
}
