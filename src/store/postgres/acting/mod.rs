//! The office's actions in PostgreSQL, shared by every instance on the database: users,
//! sessions and tokens (`users.rs`), orders and re-inspections (`orders.rs`), stop-work notices
//! (`notices.rs`), the night patrol (`patrol.rs`). The same traits as the SQLite rows, queried
//! through a small pool of connection threads (a few writes an hour; pages read them).

mod notices;
mod orders;
mod patrol;
mod users;

use super::pool::Pool;
use super::schema;
use crate::store::acting::ActingError;
use crate::store::StoreError;
use postgres::Client;

/// The acting rows on PostgreSQL.
pub struct PgActing {
    pool: Pool,
}

impl PgActing {
    /// Connect (migrating the schema first, as every PostgreSQL part does at start).
    pub fn open(url: &str) -> Result<PgActing, ActingError> {
        // Migrated on a pool thread: the synchronous client must not run on an async worker.
        let pool = Pool::start(url, 2)?;
        pool.with(schema::migrate)?;
        Ok(PgActing { pool })
    }

    /// Run `f` on a connection and wait for it.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ActingError> {
        Ok(self.pool.with(f)?)
    }
}
