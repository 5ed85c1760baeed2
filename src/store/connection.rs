//! The SQLite database file and its read-write connections: where the file lives, and a
//! connection in WAL mode with the schema in place, for the writer and every other module that
//! writes (alerts, commands, acting records, the notification outbox).

use super::config::Synchronous;
use super::schema;
use super::StoreError;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

const DB_FILE: &str = "dustwatch.db";

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// A read-write connection in WAL mode with the schema in place. WAL with `synchronous=NORMAL`
/// survives a crash of the process; busy_timeout lets the alert writer and the reading writer
/// take turns. Commits only append to the WAL: the checkpointer (`checkpoint.rs`) copies it back.
pub(crate) fn open_writer(dir: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let mut conn = Connection::open(db_path(dir))?;
    // Every transaction takes the write lock when it begins: a deferred one that reads first
    // fails at once ("database is locked", the busy timeout does not apply) when another writer
    // commits before its first write, and the batch it carried would be lost.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(&schema::ddl())?;
    schema::migrate(&conn)?;
    Ok(conn)
}
