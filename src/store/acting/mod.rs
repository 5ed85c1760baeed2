//! What the office does about alerts, as stored: orders and re-inspections, stop-work notices
//! and their receipts, night-patrol check-ins; and the users who did it (`crate::auth` owns their
//! logic, the tables live here with the rest of schema 7). One connection behind a mutex: these
//! are a few writes an hour, and the readings writer and the rules writer take turns with it.

mod notices;
mod orders;
mod patrol;

pub use notices::{Notice, NoticeReceipt, ReceiptVia};
pub use orders::{
    escalated, NewOrder, NewReinspection, Order, OrderKind, OrderState, Reinspection,
    ReinspectionResult,
};
pub use patrol::{Checkin, PatrolResult};

use super::config::Synchronous;
use super::connection::open_writer;
use super::StoreError;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use thiserror::Error;

/// Schema 7's tables (created by `schema::ddl`, so a new store and a migrated one agree).
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_tokens (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline_ts INTEGER,
    note TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts INTEGER NOT NULL,
    state TEXT NOT NULL,
    escalations INTEGER NOT NULL DEFAULT 0,
    response TEXT,
    response_by TEXT,
    response_ts INTEGER
);
CREATE INDEX IF NOT EXISTS orders_by_alert ON orders (alert_id);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (issued_ts);
CREATE TABLE IF NOT EXISTS reinspections (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts INTEGER NOT NULL,
    note TEXT NOT NULL,
    photo TEXT,
    escalated_to TEXT
);
CREATE INDEX IF NOT EXISTS reinspections_by_order ON reinspections (order_id, id);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY,
    level TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notice_receipts (
    notice_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    work TEXT NOT NULL,
    via TEXT,
    by_user TEXT,
    received_ts INTEGER,
    PRIMARY KEY (notice_id, site)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS patrol_checkins (
    id INTEGER PRIMARY KEY,
    night TEXT NOT NULL,
    site TEXT NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patrol_by_night ON patrol_checkins (night, site);
";

#[derive(Debug, Error)]
pub enum ActingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("photo file {path}: {source}")]
    Photo {
        path: String,
        source: std::io::Error,
    },
}

/// Alerts the rules engine must not close yet, in event time: an alert with an order waits for
/// a passed re-inspection, and then for data from the re-inspection's time on. Shared by the
/// store (which changes it with every order) and the rules thread (which asks before closing).
#[derive(Debug, Clone, Default)]
pub struct Holds(Arc<RwLock<HashMap<i64, i64>>>);

impl Holds {
    /// May the alert not close on data up to event time `ts`?
    pub fn is_held(&self, alert_id: i64, ts: i64) -> bool {
        // A poisoned lock means a writer panicked mid-update; holding is the safe answer.
        self.0
            .read()
            .map_or(true, |s| s.get(&alert_id).is_some_and(|from| ts < *from))
    }
    /// Hold the alert until event time `from` (`i64::MAX`: until a re-inspection passes).
    fn hold_until(&self, alert_id: i64, from: i64) {
        if let Ok(mut s) = self.0.write() {
            s.insert(alert_id, from);
        }
    }
}

/// The store of the office's actions.
pub struct ActingStore {
    conn: Mutex<Connection>,
    holds: Holds,
    photo_dir: std::path::PathBuf,
}

impl ActingStore {
    /// Open beside the readings (`dustwatch.db` in `dir`); photos go to `dir/photos`.
    pub fn open(dir: &Path) -> Result<ActingStore, ActingError> {
        let conn = open_writer(dir, Synchronous::Normal)?;
        let store = ActingStore {
            conn: Mutex::new(conn),
            holds: Holds::default(),
            photo_dir: dir.join("photos"),
        };
        for (id, from) in store.held_alerts()? {
            store.holds.hold_until(id, from);
        }
        Ok(store)
    }

    /// The alerts held open by an order, for the rules engine.
    pub fn holds(&self) -> Holds {
        self.holds.clone()
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The users' tables share this connection (see `crate::auth`).
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.conn())
    }
}

/// What the office did in one local day, for the daily report.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct DaySummary {
    /// Notices issued that day, with their receipts.
    pub notices: Vec<Notice>,
    /// Orders issued or re-inspected that day.
    pub orders: Vec<Order>,
    /// Check-ins of the night that starts that evening.
    pub patrol: Vec<Checkin>,
}

impl ActingStore {
    /// The day [from, to) (Unix ms, the local day's bounds) whose night is `night`.
    pub fn day_summary(&self, from: i64, to: i64, night: &str) -> Result<DaySummary, ActingError> {
        Ok(DaySummary {
            notices: self.notices_between(from, to)?,
            orders: self.orders_between(from, to)?,
            patrol: self.checkins(night)?,
        })
    }
}
