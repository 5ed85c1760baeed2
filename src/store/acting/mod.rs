//! What the office does about alerts, as stored: orders and re-inspections, stop-work notices
//! and their receipts, night-patrol check-ins; and the users who did it (`crate::auth` owns their
//! logic, the tables live here with the rest of schema 7). The rows live behind [`ActingDb`]:
//! SQLite (one connection behind a mutex: a few writes an hour, taking turns with the readings
//! writer) or PostgreSQL (`store::postgres::acting`), so instances sharing a database share them.

mod notices;
mod orders;
mod patrol;
pub(crate) mod statements;
mod users;

pub use notices::NoticeDb;
pub use notices::{Notice, NoticeReceipt, ReceiptVia};
pub use orders::OrderDb;
pub use orders::{
    escalated, NewOrder, NewReinspection, Order, OrderKind, OrderState, Reinspection,
    ReinspectionResult,
};
pub use patrol::{Checkin, PatrolDb, PatrolResult};
pub use users::{Credentials, StoredUser, UserDb};

use super::config::Synchronous;
use super::connection::open_writer;
use super::StoreError;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use thiserror::Error;

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
///
/// With rows shared by several instances ([`ActingStore::shared_holds`]) the answer is read from
/// the rows at the moment of asking: an order or re-inspection recorded on another instance a
/// moment ago counts, however fast event time runs. The engine asks only when an alert is about
/// to close, which is rare.
#[derive(Clone, Default)]
pub struct Holds {
    known: Arc<RwLock<HashMap<i64, i64>>>,
    shared: Option<Arc<dyn ActingDb>>,
}

impl std::fmt::Debug for Holds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holds")
            .field("known", &self.known)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Holds {
    /// May the alert not close on data up to event time `ts`?
    pub fn is_held(&self, alert_id: i64, ts: i64) -> bool {
        let from = match &self.shared {
            Some(db) => match db.hold_of(alert_id) {
                Ok(from) => from,
                Err(e) => {
                    // Unknown is held: the alert closes on a later minute once the rows answer.
                    tracing::warn!(alert_id, error = %e, "could not read the alert's order; it stays open");
                    return true;
                }
            },
            // A poisoned lock means a writer panicked mid-update; holding is the safe answer.
            None => match self.known.read() {
                Ok(s) => s.get(&alert_id).copied(),
                Err(_) => return true,
            },
        };
        from.is_some_and(|from| ts < from)
    }

    /// Hold the alert until event time `from` (`i64::MAX`: until a re-inspection passes).
    fn hold_until(&self, alert_id: i64, from: i64) {
        if let Ok(mut s) = self.known.write() {
            s.insert(alert_id, from);
        }
    }
}

/// Where the office's actions are kept: SQLite beside the readings, or PostgreSQL shared by
/// several instances. Each part is a trait of its own, beside the logic that uses it.
pub trait ActingDb: users::UserDb + orders::OrderDb + notices::NoticeDb + patrol::PatrolDb {}

impl<T: users::UserDb + orders::OrderDb + notices::NoticeDb + patrol::PatrolDb> ActingDb for T {}

/// The SQLite side: one connection behind a mutex.
pub struct SqliteActing {
    conn: Mutex<Connection>,
}

impl SqliteActing {
    /// Open beside the readings (`dustwatch.db` in `dir`).
    pub fn open(dir: &Path) -> Result<SqliteActing, ActingError> {
        Ok(SqliteActing {
            conn: Mutex::new(open_writer(dir, Synchronous::Normal)?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The store of the office's actions: the checks and the holds shared by both backends, the
/// rows in [`ActingDb`], photos as files in the data directory.
pub struct ActingStore {
    db: Arc<dyn ActingDb>,
    holds: Holds,
    photo_dir: std::path::PathBuf,
}

impl ActingStore {
    /// Open on SQLite beside the readings (`dustwatch.db` in `dir`); photos go to `dir/photos`.
    pub fn open(dir: &Path) -> Result<ActingStore, ActingError> {
        ActingStore::with_db(Arc::new(SqliteActing::open(dir)?), dir)
    }

    /// Open on the given rows; photos go to `data_dir/photos`.
    pub fn with_db(db: Arc<dyn ActingDb>, data_dir: &Path) -> Result<ActingStore, ActingError> {
        let store = ActingStore {
            db,
            holds: Holds::default(),
            photo_dir: data_dir.join("photos"),
        };
        store.refresh_holds()?;
        Ok(store)
    }

    /// The alerts held open by an order, for the rules engine.
    pub fn holds(&self) -> Holds {
        self.holds.clone()
    }

    /// The holds as [`ActingStore::holds`], read from the rows each time the engine asks: for
    /// rows other instances write too (PostgreSQL).
    pub fn shared_holds(&self) -> Holds {
        Holds {
            shared: Some(self.db.clone()),
            ..self.holds.clone()
        }
    }

    /// Read the holds from the rows (at open).
    fn refresh_holds(&self) -> Result<(), ActingError> {
        let held: HashMap<i64, i64> = self.db.held_alerts()?.into_iter().collect();
        if let Ok(mut s) = self.holds.known.write() {
            *s = held;
        }
        Ok(())
    }

    /// The rows (the users' logic in `crate::auth` works on them directly).
    pub fn db(&self) -> &dyn ActingDb {
        self.db.as_ref()
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

#[cfg(test)]
mod text_tests {
    use super::{OrderKind, OrderState, PatrolResult, ReceiptVia, ReinspectionResult};
    use crate::store::commands::CommandState;
    use serde::Serialize;

    /// The stored text, the API's JSON and the parse back all agree (one derive each).
    fn agrees<T: Serialize + Copy + PartialEq + std::fmt::Debug + std::str::FromStr>(all: &[T])
    where
        &'static str: From<T>,
    {
        for v in all {
            let text: &'static str = (*v).into();
            let json = serde_json::to_value(v).expect("serialises");
            assert_eq!(json, serde_json::json!(text), "{v:?}");
            assert!(text.parse::<T>().ok() == Some(*v), "{v:?} parses back");
        }
    }

    #[test]
    fn the_office_enums_say_in_text_what_they_say_in_json() {
        agrees(&[OrderKind::StopWork, OrderKind::Rectify]);
        agrees(&[OrderState::Open, OrderState::Passed]);
        agrees(&[ReinspectionResult::Passed, ReinspectionResult::Failed]);
        agrees(&PatrolResult::ALL);
        agrees(&[ReceiptVia::Inspector, ReceiptVia::Device]);
        agrees(&[
            CommandState::Sent,
            CommandState::Answered,
            CommandState::TimedOut,
            CommandState::NotSent,
        ]);
    }
}
