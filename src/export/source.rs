//! Reading the outbox in id order from a persisted cursor, rendering line protocol, and advancing
//! the cursor (pruning what is done) in one transaction. The exporter's own SQLite connection:
//! it never touches the ingest writer's.

use super::line::{self, SiteTags};
use crate::store::outbox::OutboxKind;
use crate::store::sqlite::db_path;
use crate::store::StoreError;
use dustwatch_protocol::{Level, Reading};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// One batch of lines read from the outbox.
#[derive(Debug, Default)]
pub struct Batch {
    /// Line protocol, one line per record, newline-terminated.
    pub body: String,
    pub lines: usize,
    /// Outbox rows covered (rows whose record is gone, e.g. by retention, give no line).
    pub rows: usize,
    /// Highest outbox id in the batch: the cursor once it is written.
    pub last_id: i64,
}

pub struct OutboxSource {
    conn: Connection,
    name: String,
}

const BATCH_SQL: &str = "
SELECT o.id, o.kind, o.site, o.device, o.boot, o.seq, o.ts,
       s.street, s.kind,
       r.interval_s, r.pm25, r.pm10, r.tsp, r.noise_dba, r.temp_c, r.rh_pct, r.pressure_kpa,
       r.wind_ms, r.wind_deg, r.flags,
       e.kind,
       c.level
FROM outbox o
LEFT JOIN sites s ON s.id = o.site
LEFT JOIN readings r ON o.kind = 1 AND r.site = o.site AND r.ts = o.ts AND r.device = o.device
     AND r.boot = o.boot AND r.seq = o.seq
LEFT JOIN events e ON o.kind = 2 AND e.site = o.site AND e.device = o.device AND e.boot = o.boot
     AND e.seq = o.seq
LEFT JOIN city_levels c ON o.kind = 3 AND c.ts = o.ts
WHERE o.id > ?1
ORDER BY o.id
LIMIT ?2";

impl OutboxSource {
    /// Open the store's database under `data_dir` (the store created the tables) for consumer
    /// `name` (its cursor row).
    pub fn open(data_dir: &Path, name: &str) -> Result<OutboxSource, StoreError> {
        let conn = Connection::open(db_path(data_dir))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        crate::store::outbox::create(&conn)?;
        Ok(OutboxSource {
            conn,
            name: name.to_string(),
        })
    }

    /// The last exported id (0 = nothing yet).
    pub fn cursor(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT last_id FROM export_cursor WHERE name = ?1), 0)",
                params![self.name],
                |r| r.get(0),
            )
            .map_err(StoreError::from)
    }

    /// Rows committed after `cursor`.
    pub fn backlog(&self, cursor: i64) -> Result<i64, StoreError> {
        let newest: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM outbox", [], |r| r.get(0))?;
        Ok((newest - cursor).max(0))
    }

    /// Up to `limit` rows after `after`, rendered as line protocol; None when there are none.
    pub fn next_batch(&self, after: i64, limit: usize) -> Result<Option<Batch>, StoreError> {
        let mut stmt = self.conn.prepare_cached(BATCH_SQL)?;
        let mut rows = stmt.query(params![after, limit as i64])?;
        let mut batch = Batch::default();
        while let Some(row) = rows.next()? {
            batch.rows += 1;
            batch.last_id = row.get(0)?;
            let kind = OutboxKind::from_i64(row.get(1)?);
            let site: Option<String> = row.get(2)?;
            let device: Option<String> = row.get(3)?;
            let ts: i64 = row.get(6)?;
            let tags = SiteTags {
                street: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
                kind: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            };
            let (site, device) = (site.unwrap_or_default(), device.unwrap_or_default());
            let before = batch.body.len();
            match kind {
                Some(OutboxKind::Reading) => {
                    // A NULL interval means the reading is gone (retention ran first).
                    let Some(interval_s) = row.get::<_, Option<u32>>(9)? else {
                        continue;
                    };
                    let flags: Option<String> = row.get(19)?;
                    let reading = Reading {
                        ts,
                        boot: row.get(4)?,
                        seq: row.get(5)?,
                        interval_s,
                        pm25: row.get(10)?,
                        pm10: row.get(11)?,
                        tsp: row.get(12)?,
                        noise_dba: row.get(13)?,
                        temp_c: row.get(14)?,
                        rh_pct: row.get(15)?,
                        pressure_kpa: row.get(16)?,
                        wind_ms: row.get(17)?,
                        wind_deg: row.get(18)?,
                        flags: match flags {
                            Some(f) => serde_json::from_str(&f)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                            None => BTreeMap::new(),
                        },
                    };
                    line::reading(&mut batch.body, &site, &device, &tags, &reading);
                }
                Some(OutboxKind::Event) => {
                    let Some(event_kind) = row.get::<_, Option<String>>(20)? else {
                        continue;
                    };
                    line::event(
                        &mut batch.body,
                        &site,
                        &device,
                        &tags,
                        &event_kind,
                        row.get(4)?,
                        row.get(5)?,
                        ts,
                    );
                }
                Some(OutboxKind::CityLevel) => {
                    let Some(level) = row.get::<_, Option<String>>(21)? else {
                        continue;
                    };
                    let level = Level::from_str(&level).map_err(StoreError::Corrupt)?;
                    line::city_level(&mut batch.body, level, ts);
                }
                None => {
                    tracing::warn!(id = batch.last_id, "outbox row of unknown kind skipped");
                }
            }
            if batch.body.len() > before {
                batch.lines += 1;
            }
        }
        Ok((batch.rows > 0).then_some(batch))
    }

    /// Record that everything up to `last_id` is exported and delete those outbox rows.
    pub fn advance(&mut self, last_id: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO export_cursor (name, last_id) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            params![self.name, last_id],
        )?;
        // One consumer today; with several, prune up to the slowest cursor.
        tx.execute(
            "DELETE FROM outbox WHERE id <= (SELECT min(last_id) FROM export_cursor)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }
}
