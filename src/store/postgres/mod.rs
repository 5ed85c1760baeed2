//! The PostgreSQL store: the same traits as the embedded SQLite store, for several aggregators
//! sharing one database. `config.rs` connects, `schema.rs` migrates, `writer.rs` and `batch.rs`
//! write batches (fenced by lease revision when partitions are owned), `reader.rs` and `pool.rs`
//! serve the pages, `alerts.rs` holds the rules engine's side, `retention.rs` bounds the tables. What the office does lives in `acting/`, commands to
//! devices in `commands.rs`, notifications to send in `notify_outbox.rs`.

pub mod acting;
mod alerts;
mod batch;
pub mod commands;
pub mod config;
mod known;
pub mod notify_outbox;
pub(crate) mod pool;
pub mod progress;
mod raw_frames;
mod reader;
mod retention;
pub mod schema;
mod writer;

pub use acting::PgActing;
pub use alerts::PgAlertStore;
pub use commands::PgCommands;
pub use config::PostgresConfig;
pub use notify_outbox::PgNotifyOutbox;
pub use reader::PgReader;
pub use writer::PgStore;

/// True when retrying may succeed: the connection broke, the server is restarting or short of
/// resources, or a transaction lost a race (serialization failure, deadlock).
pub(crate) fn is_transient(e: &::postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            // 08: connection exception; 53: insufficient resources; 57P: operator intervention;
            // 40001/40P01: serialization failure, deadlock.
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
                || c == "40001"
                || c == "40P01"
        }
        // No SQLSTATE: an I/O error on the socket.
        None => e.as_db_error().is_none(),
    }
}
