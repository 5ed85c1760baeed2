//! The store: what a reading becomes once it is accepted, and the traits the rest of the
//! aggregator uses to write and read it (`StoreWriter`, `StoreReader`, `AlertWriter`). SQLite
//! (`sqlite.rs`, the embedded default) and PostgreSQL (`postgres/`, shared by several
//! aggregators) implement them; `open.rs` picks one from `[store] backend`.

pub mod acting;
pub mod alerts;
mod batch;
#[cfg(test)]
mod bounds_tests;
pub mod checkpoint;
mod command_statements;
pub mod commands;
pub mod config;
mod connection;
mod dead_letters;
pub mod fence;
pub mod forward_queue;
pub mod hot;
mod known;
pub mod notify_outbox;
mod open;
pub mod outbox;
pub mod postgres;
pub mod progress;
pub mod raw_frames;
pub mod reader;
mod reading_rows;
mod registry;
pub mod retention;
mod rollup;
pub mod schema;
mod sql;
pub mod sqlite;
mod sqlite_batch;
pub mod tables;
#[cfg(test)]
mod tests;

use dustwatch_protocol::{
    CityLevel, CommandReply, Event, Metric, Reading, RejectReason, Rejected, SiteInfo, Status,
    TopicRoot,
};
use serde::Serialize;
use thiserror::Error;

pub use alerts::{Alert, AlertChange, AlertFilter, AlertStore, AlertWriter, DayRow, LoadedAlerts};
pub use fence::Fence;
pub use open::{open, open_acting, open_commands, open_notify_queue, OpenStore};
pub use reader::SqliteReader;
pub use sqlite::{SqliteStore, StoreConfig};

/// One accepted message, ready to be stored. Rejected messages become dead letters, so every
/// message the broker delivered has exactly one record.
#[derive(Debug, Clone)]
pub enum Record {
    Reading {
        site: String,
        device: String,
        reading: Reading,
    },
    Event {
        site: String,
        device: String,
        event: Event,
    },
    Status {
        site: String,
        device: String,
        status: Status,
    },
    CityLevel {
        level: CityLevel,
        source: String,
    },
    /// A device's answer to a command.
    CommandReply {
        site: String,
        device: String,
        reply: CommandReply,
    },
    DeadLetter(DeadLetter),
}

impl Record {
    /// The event time the record carries, if any (a status may have none).
    pub fn event_time(&self) -> Option<i64> {
        match self {
            Record::Reading { reading, .. } => Some(reading.ts),
            Record::Event { event, .. } => Some(event.ts),
            Record::Status { status, .. } => status.ts,
            Record::CityLevel { level, .. } => Some(level.ts),
            Record::CommandReply { .. } | Record::DeadLetter(_) => None,
        }
    }

    /// Turn a decoded record that must not be stored into its dead letter: the topic it came on
    /// and its payload re-encoded (the raw bytes were decoded upstream).
    pub fn into_dead_letter(self, root: &TopicRoot, rejected: Rejected) -> Record {
        let (topic, payload) = match &self {
            Record::Reading {
                site,
                device,
                reading,
            } => (root.reading(site, device), Ok(reading.encode())),
            Record::Event {
                site,
                device,
                event,
            } => (root.event(site, device), serde_json::to_vec(event)),
            Record::Status {
                site,
                device,
                status,
            } => (root.status(site, device), serde_json::to_vec(status)),
            Record::CityLevel { level, source } => (
                format!("{} (from {source})", root.city_level()),
                serde_json::to_vec(level),
            ),
            Record::CommandReply {
                site,
                device,
                reply,
            } => (root.reply(site, device), Ok(reply.encode())),
            Record::DeadLetter(_) => return self,
        };
        Record::DeadLetter(DeadLetter {
            topic,
            payload: payload.unwrap_or_default(),
            reason: rejected.reason,
            detail: rejected.detail,
        })
    }
}

/// A rejected message, kept raw so nothing is lost and the reason can be inspected.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub topic: String,
    pub payload: Vec<u8>,
    pub reason: RejectReason,
    pub detail: String,
}

/// What writing one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Readings stored for the first time.
    pub stored: u64,
    /// Readings and events already stored (redelivery, duplicate publish).
    pub duplicates: u64,
    /// Dead letters written, by reason (including rejections decided by the store, e.g. strict
    /// registry).
    pub rejected: Vec<(RejectReason, u64)>,
    /// Records of other kinds stored (events, status, city level).
    pub other: u64,
    /// Per record of the batch: true when it was stored for the first time (not a duplicate,
    /// not rejected). Downstream consumers (rules) look only at fresh records.
    pub fresh: Vec<bool>,
}

/// The newest reading of a site, kept hot (never found by scanning).
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    pub device: String,
    pub reading: Reading,
    /// Wall-clock time the aggregator received it, Unix ms.
    pub received_ms: i64,
}

/// A site as the store knows it: the registry entry, or a placeholder for an unregistered one.
#[derive(Debug, Clone, Serialize)]
pub struct SiteRow {
    #[serde(flatten)]
    pub info: SiteInfo,
    pub registered: bool,
}

/// One step of an aggregated series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Start of the step, Unix ms.
    pub ts: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub count: u64,
}

/// A device's current status row.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    pub site: String,
    pub device: String,
    pub state: Option<String>,
    pub fw: Option<String>,
    pub boot: Option<u32>,
    pub interval_s: Option<u32>,
    pub last_seen_ms: Option<i64>,
}

/// Row counts, for metrics and tests.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub readings: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub sites: u64,
    pub devices: u64,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} is not available with the PostgreSQL store yet: use the SQLite store")]
    NotOnPostgres(&'static str),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error(
        "partition {partition}: lease revision {revision} is older than the store's {current}; \
         another instance owns the partition now"
    )]
    Fenced {
        partition: u32,
        revision: u64,
        current: u64,
    },
    #[error("store configuration: {0}")]
    Config(String),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("step must be between 1 s and 31 days, got {0} s")]
    BadStep(i64),
    #[error("cannot start the store's {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when retrying the same write may succeed (a lock, a full disk, an I/O error); false
    /// when the record itself is the problem and retrying would wedge ingest.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DatabaseBusy
                    | DatabaseLocked
                    | DiskFull
                    | SystemIoFailure
                    | CannotOpen
                    | OutOfMemory
                    | FileLockingProtocolFailed
                    | ReadOnly
            ),
            StoreError::Postgres(e) => postgres::is_transient(e),
            StoreError::DataDir { .. } | StoreError::Thread { .. } => true,
            _ => false,
        }
    }
}

/// The write side: owned by the single writer task.
pub trait StoreWriter: Send {
    /// Write a batch atomically: either every record is durable when this returns Ok, or none.
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchOutcome, StoreError>;
    /// As [`StoreWriter::write_batch`], for the owner of a partition's lease: in the same
    /// transaction, refuse with [`StoreError::Fenced`] (writing nothing) when the store has seen
    /// a newer revision of the partition's lease, else record `fence.revision` and write.
    fn write_batch_fenced(
        &mut self,
        batch: &[Record],
        fence: Fence,
    ) -> Result<BatchOutcome, StoreError>;
    /// Insert or update registry sites (marks them registered).
    fn upsert_sites(&mut self, sites: &[SiteInfo]) -> Result<(), StoreError>;
    /// Delete what is older than the retention of each table, relative to event time `now_ms`
    /// (the fleet clock); a table the pass would mostly empty is left alone and reported.
    fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionReport, StoreError>;
    /// The clock the fleet agrees on: the (lower) median of the newest event times of the sites
    /// that report (registered ones when there are any), never moving back. One device's clock
    /// cannot move it; `None` before any reading.
    fn fleet_clock(&self) -> Option<i64>;
    /// Wall-clock time between retention passes.
    fn retention_every(&self) -> std::time::Duration;
}

/// What a retention pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RetentionReport {
    pub deleted: u64,
    /// Tables left alone because the pass would have deleted too much of them.
    pub refused: Vec<RetentionRefused>,
}

/// A table retention left alone, and why.
#[derive(Debug, Clone, PartialEq, Error)]
#[error(
    "retention would delete {:.0}% of table {table} (rows before {cut_ms}, fleet clock {now_ms}); \
     the limit is {:.0}% ([store] retention_max_share): check the devices' clocks, or raise the \
     limit if this much is really old",
    share * 100.0,
    limit * 100.0
)]
pub struct RetentionRefused {
    pub table: &'static str,
    /// Share of the table's time span the pass would delete.
    pub share: f64,
    pub limit: f64,
    pub cut_ms: i64,
    pub now_ms: i64,
}

/// The read side: shared by the web and the rules.
pub trait StoreReader: Send + Sync {
    /// The hot state (newest reading per site, fleet clock) the writer keeps for the pages.
    fn hot(&self) -> &std::sync::Arc<hot::Hot>;
    fn sites(&self) -> Result<Vec<SiteRow>, StoreError>;
    fn devices(&self, site: Option<&str>) -> Result<Vec<DeviceRow>, StoreError>;
    /// Latest reading per site, as persisted at the last commit (used to warm the hot copy).
    fn latest(&self) -> Result<Vec<(String, Latest)>, StoreError>;
    /// A site's series of one metric in [from, to) aggregated to `step_s` seconds; only valid
    /// (flag N) values count.
    fn series(
        &self,
        site: &str,
        metric: Metric,
        from_ms: i64,
        to_ms: i64,
        step_s: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError>;
    /// Raw readings of a site in [from, to), oldest first.
    fn readings(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Reading)>, StoreError>;
    fn counts(&self) -> Result<Counts, StoreError>;
    /// Device events of a site with event time in [from, to), oldest first, as (device, event).
    fn events(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Event)>, StoreError>;
    /// The city level timeline, oldest first.
    fn city_levels(&self) -> Result<Vec<CityLevel>, StoreError>;
    /// Alerts, newest first.
    fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError>;
    /// Recorded changes of one alert, oldest first.
    fn alert_history(&self, id: i64) -> Result<Vec<AlertChange>, StoreError>;
    /// Daily figures for local dates in [from, to] (`YYYY-MM-DD`).
    fn days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<DayRow>, StoreError>;
    /// HJ 212 frames kept as dead letters, newest first.
    fn raw_frames(
        &self,
        q: &raw_frames::RawFrameQuery,
    ) -> Result<Vec<raw_frames::RawFrameRow>, StoreError>;
}
