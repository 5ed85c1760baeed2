//! The HJ 212 forwarding queue: every fresh reading gets a rising id in the same transaction that
//! stores it, so forwarding to an upstream platform never misses a committed reading nor sends
//! one that was rolled back. The same pattern as the export outbox, in a table of its own: the
//! forwarding targets keep their own cursors (`forward_cursor`) and prune up to the slowest, so
//! neither the exporter nor a target can delete what another still has to send.

use super::StoreError;
use rusqlite::{params, Connection, Transaction};

pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS forward_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forward_cursor (
    name TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Create the tables (idempotent).
pub fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(DDL)?;
    Ok(())
}

/// Queue one fresh reading inside the store's write transaction.
pub fn push(
    tx: &Transaction,
    site: &str,
    device: &str,
    boot: u32,
    seq: u64,
    ts: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO forward_queue (site, device, boot, seq, ts) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![site, device, boot, seq, ts])?;
    Ok(())
}
