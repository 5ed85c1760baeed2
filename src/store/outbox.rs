//! The outbox: an ordered change feed of what the store committed for the first time, for
//! consumers outside the store (the InfluxDB exporter). Readings live in a `WITHOUT ROWID` table
//! clustered by (site, ts), which has no insertion order; the outbox gives every fresh reading,
//! event and city level a rising id in the same transaction that stores it.
//!
//! Ids come from `AUTOINCREMENT`, so they are never reused even after consumed rows are pruned,
//! and there is only one writer connection, so ids become visible in commit order: a consumer that
//! remembers "everything up to id N is done" (a row in `export_cursor`) never skips a row.
//!
//! The store knows nothing of the consumers: a row names the stored record by its key, and the
//! consumer reads the record itself.

use super::StoreError;
use rusqlite::{params, Connection, Transaction};

pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind INTEGER NOT NULL,
    site TEXT,
    device TEXT,
    boot INTEGER,
    seq INTEGER,
    ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS export_cursor (
    name TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
";

/// What an outbox row points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// `readings` row (site, ts, device, boot, seq).
    Reading = 1,
    /// `events` row (site, device, boot, seq).
    Event = 2,
    /// `city_levels` row (ts).
    CityLevel = 3,
}

impl OutboxKind {
    pub fn from_i64(v: i64) -> Option<OutboxKind> {
        match v {
            1 => Some(OutboxKind::Reading),
            2 => Some(OutboxKind::Event),
            3 => Some(OutboxKind::CityLevel),
            _ => None,
        }
    }
}

/// Create the outbox tables (idempotent).
pub fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(DDL)?;
    Ok(())
}

/// Append one row inside the store's write transaction.
pub fn push(
    tx: &Transaction,
    kind: OutboxKind,
    site: Option<&str>,
    device: Option<&str>,
    boot: Option<u32>,
    seq: Option<u64>,
    ts: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO outbox (kind, site, device, boot, seq, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![kind as i64, site, device, boot, seq, ts])?;
    Ok(())
}
