//! Reading the outbox in id order from a persisted cursor, rendering line protocol, and advancing
//! the cursor (pruning what is done) in one transaction. The exporter's own SQLite connection:
//! it never touches the ingest writer's.

use super::line::{self, SiteTags};
use crate::store::outbox::OutboxKind;
use crate::store::sqlite::db_path;
use crate::store::StoreError;
use dustwatch_protocol::{EventTime, Level, Reading};
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
    /// Highest `alert_history` id in the batch, when it has alert transitions.
    pub last_alert_id: Option<i64>,
}

/// Where the exporter stands: outbox id and `alert_history` id done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub outbox: i64,
    pub alerts: i64,
}

/// Where the exporter reads what to send: the store's outbox and alert history, in id order,
/// with a persisted cursor. One per store backend.
pub trait ExportSource: Send {
    /// What is exported already (0 = nothing yet).
    fn cursor(&self) -> Result<Cursor, StoreError>;
    /// Records committed after `cursor`.
    fn backlog(&self, cursor: Cursor) -> Result<i64, StoreError>;
    /// Up to `limit` records after `after` (outbox first, then alert transitions), rendered as
    /// line protocol; None when there are none.
    fn next_batch(&self, after: Cursor, limit: usize) -> Result<Option<Batch>, StoreError>;
    /// Record that everything up to `to` is exported and delete those outbox rows.
    fn advance(&mut self, to: Cursor) -> Result<(), StoreError>;
}

impl<T: ExportSource + ?Sized> ExportSource for Box<T> {
    fn cursor(&self) -> Result<Cursor, StoreError> {
        (**self).cursor()
    }
    fn backlog(&self, cursor: Cursor) -> Result<i64, StoreError> {
        (**self).backlog(cursor)
    }
    fn next_batch(&self, after: Cursor, limit: usize) -> Result<Option<Batch>, StoreError> {
        (**self).next_batch(after, limit)
    }
    fn advance(&mut self, to: Cursor) -> Result<(), StoreError> {
        (**self).advance(to)
    }
}

/// The SQLite store's export source.
pub struct OutboxSource {
    conn: Connection,
    name: String,
    /// Cursor row of the alert transitions: `alert_history` (the rules engine's, append-only,
    /// one writer, so its ids also rise in commit order) is read directly, without the outbox.
    alerts_name: String,
    has_alerts: bool,
}

const ALERT_SQL: &str = "
SELECT h.id, h.alert_id, h.change, h.ts, h.state, h.severity, h.acknowledged,
       a.site, a.rule, s.street, s.kind
FROM alert_history h
LEFT JOIN alerts a ON a.id = h.alert_id
LEFT JOIN sites s ON s.id = a.site
WHERE h.id > ?1
ORDER BY h.id
LIMIT ?2";

const BATCH_SQL: &str = "
SELECT o.id, o.kind, o.site, o.device, o.boot, o.seq, o.ts,
       s.street, s.kind,
       r.interval_s, r.pm25, r.pm10, r.tsp, r.noise_dba, r.temp_c, r.rh_pct, r.pressure_kpa,
       r.wind_ms, r.wind_deg, r.flags,
       e.kind,
       c.level,
       r.no2, r.so2, r.o3, r.co
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
        let has_alerts = conn.query_row(
            "SELECT count(*) = 2 FROM sqlite_master WHERE type = 'table' \
             AND name IN ('alert_history', 'alerts')",
            [],
            |r| r.get(0),
        )?;
        Ok(OutboxSource {
            conn,
            name: name.to_string(),
            alerts_name: format!("{name}.alerts"),
            has_alerts,
        })
    }

    fn cursor_of(&self, name: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT last_id FROM export_cursor WHERE name = ?1), 0)",
                params![name],
                |r| r.get(0),
            )
            .map_err(StoreError::from)
    }

    fn alert_rows(&self, batch: &mut Batch, after: i64, limit: usize) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(ALERT_SQL)?;
        let mut rows = stmt.query(params![after, limit as i64])?;
        while let Some(row) = rows.next()? {
            batch.rows += 1;
            batch.last_alert_id = Some(row.get(0)?);
            let tags = SiteTags {
                street: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
                kind: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
            };
            let t = line::AlertChange {
                alert_id: row.get(1)?,
                change: named("change", row.get(2)?)?,
                ts: EventTime(row.get(3)?),
                state: named("state", row.get(4)?)?,
                severity: named("severity", row.get(5)?)?,
                acknowledged: row.get(6)?,
                site: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
                rule: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            };
            line::alert(&mut batch.body, &tags, &t);
            batch.lines += 1;
        }
        Ok(())
    }

    fn outbox_rows(&self, batch: &mut Batch, after: i64, limit: usize) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(BATCH_SQL)?;
        let mut rows = stmt.query(params![after, limit as i64])?;
        while let Some(row) = rows.next()? {
            batch.rows += 1;
            batch.last_id = row.get(0)?;
            let kind = OutboxKind::from_i64(row.get(1)?);
            let site: Option<String> = row.get(2)?;
            let device: Option<String> = row.get(3)?;
            let ts = EventTime(row.get(6)?);
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
                        no2: row.get(22)?,
                        so2: row.get(23)?,
                        o3: row.get(24)?,
                        co: row.get(25)?,
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
        Ok(())
    }
}

/// A column holding an enum's name, parsed; a name this build does not know is a corrupt row
/// (the exporter stops and says so rather than export a different value).
pub(super) fn named<T>(column: &str, text: String) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("alert_history.{column} `{text}`: {e}")))
}

impl ExportSource for OutboxSource {
    /// What is exported already (0 = nothing yet).
    fn cursor(&self) -> Result<Cursor, StoreError> {
        Ok(Cursor {
            outbox: self.cursor_of(&self.name)?,
            alerts: self.cursor_of(&self.alerts_name)?,
        })
    }

    /// Records committed after `cursor`.
    fn backlog(&self, cursor: Cursor) -> Result<i64, StoreError> {
        let newest: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM outbox", [], |r| r.get(0))?;
        let mut backlog = (newest - cursor.outbox).max(0);
        if self.has_alerts {
            let newest: i64 =
                self.conn
                    .query_row("SELECT coalesce(max(id), 0) FROM alert_history", [], |r| {
                        r.get(0)
                    })?;
            backlog += (newest - cursor.alerts).max(0);
        }
        Ok(backlog)
    }

    /// Up to `limit` records after `after` (outbox first, then alert transitions), rendered as
    /// line protocol; None when there are none.
    fn next_batch(&self, after: Cursor, limit: usize) -> Result<Option<Batch>, StoreError> {
        let mut batch = Batch {
            last_id: after.outbox,
            ..Default::default()
        };
        self.outbox_rows(&mut batch, after.outbox, limit)?;
        if self.has_alerts && batch.rows < limit {
            let room = limit - batch.rows;
            self.alert_rows(&mut batch, after.alerts, room)?;
        }
        Ok((batch.rows > 0).then_some(batch))
    }

    /// Record that everything up to `to` is exported and delete those outbox rows.
    fn advance(&mut self, to: Cursor) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (name, id) in [(&self.name, to.outbox), (&self.alerts_name, to.alerts)] {
            tx.execute(
                "INSERT INTO export_cursor (name, last_id) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                params![name, id],
            )?;
        }
        // The outbox has one consumer (this exporter); a second one would prune up to the
        // slowest cursor.
        tx.execute("DELETE FROM outbox WHERE id <= ?1", params![to.outbox])?;
        tx.commit()?;
        Ok(())
    }
}
