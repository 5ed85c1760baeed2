//! Settings of the PostgreSQL store (`[store.postgres]`) and opening a connection.
//!
//! The client is the synchronous `postgres` crate without TLS: the store writer and the rules
//! engine already run on threads of their own, so a blocking client fits them without a second
//! async stack, and it adds few packages (tokio is already in the tree; sqlx would bring its
//! macros, a pool and a runtime layer). TLS is left to the network (loopback, or a tunnel):
//! `tokio-postgres`' TLS adapters can be added later behind a feature.

use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// `[store.postgres]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Connection string, as libpq takes it: `postgresql://user:password@host:port/dbname` or
    /// `host=... user=... dbname=...`. Required with `backend = "postgres"`.
    pub url: String,
    /// Connections the pages read through. Default 4.
    pub readers: usize,
    /// Seconds between refreshes of the newest readings other instances wrote (the pages'
    /// hot copy). Default 2.
    pub refresh_s: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            readers: 4,
            refresh_s: 2,
        }
    }
}

/// Environment variable with the database password, to keep it out of the config file (it
/// wins over a password in the URL).
pub const PASSWORD_ENV: &str = "DUSTWATCH_POSTGRES_PASSWORD";

/// Open one plain connection.
pub fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    if url.trim().is_empty() {
        return Err(StoreError::Config(
            "[store] backend = \"postgres\" needs [store.postgres] url".into(),
        ));
    }
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Config(format!("[store.postgres] url: {e}")))?;
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        config.password(password);
    }
    config.application_name("dustwatch");
    config.connect_timeout(std::time::Duration::from_secs(10));
    Ok(config.connect(postgres::NoTls)?)
}
