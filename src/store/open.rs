//! Opening the store the configuration names (`[store] backend`): its writer, a reader sharing
//! the writer's hot state, and the rules engine's alert writer, all behind the store traits.

use super::config::{Backend, StoreConfig};
use super::postgres::PgStore;
use super::{AlertStore, AlertWriter, SqliteStore, StoreError, StoreReader, StoreWriter};
use std::sync::Arc;

/// The store's parts as the aggregator uses them.
pub struct OpenStore {
    pub writer: Box<dyn StoreWriter>,
    pub reader: Arc<dyn StoreReader>,
    pub alerts: Box<dyn AlertWriter>,
}

/// Open (or create, or migrate) the configured store. `strict`: refuse sites not in the
/// registry; `outbox`: append fresh records to the outbox for the exporter.
/// `outbox`: queue fresh records for the long-term export; `forward`: queue fresh readings for
/// HJ 212 forwarding (`[[hj212.forward]]`, SQLite only for now).
pub fn open(
    config: &StoreConfig,
    strict: bool,
    outbox: bool,
    forward: bool,
) -> Result<OpenStore, StoreError> {
    match config.backend {
        Backend::Sqlite => {
            let mut store = SqliteStore::open(config.clone(), strict)?;
            store.set_outbox(outbox);
            store.set_forward_queue(forward);
            let reader = Arc::new(store.reader()?);
            Ok(OpenStore {
                writer: Box::new(store),
                reader,
                alerts: Box::new(AlertStore::open(&config.data_dir)?),
            })
        }
        Backend::Postgres => {
            if forward {
                return Err(StoreError::NotOnPostgres(
                    "HJ 212 forwarding ([[hj212.forward]])",
                ));
            }
            let mut store = PgStore::open(config.clone(), strict)?;
            store.set_outbox(outbox);
            let reader = Arc::new(store.reader()?);
            let alerts = Box::new(store.alert_store()?);
            Ok(OpenStore {
                writer: Box::new(store),
                reader,
                alerts,
            })
        }
    }
}

/// The office's actions and its users on the configured backend (PostgreSQL: shared by every
/// instance on the database; photos stay files under the data directory either way).
pub fn open_acting(
    config: &StoreConfig,
) -> Result<super::acting::ActingStore, super::acting::ActingError> {
    use super::acting::{ActingStore, SqliteActing};
    match config.backend {
        Backend::Sqlite => ActingStore::with_db(
            Arc::new(SqliteActing::open(&config.data_dir)?),
            &config.data_dir,
        ),
        Backend::Postgres => ActingStore::with_db(
            Arc::new(super::postgres::PgActing::open(&config.postgres.url)?),
            &config.data_dir,
        ),
    }
}

/// The log of commands to devices on the configured backend.
pub fn open_commands(
    config: &StoreConfig,
) -> Result<Arc<dyn super::commands::CommandLog>, StoreError> {
    Ok(match config.backend {
        Backend::Sqlite => Arc::new(super::commands::CommandStore::open(&config.data_dir)?),
        Backend::Postgres => Arc::new(super::postgres::PgCommands::open(&config.postgres.url)?),
    })
}

/// The notifier's side of the notification outbox on the configured backend.
pub fn open_notify_queue(
    config: &StoreConfig,
) -> Result<Box<dyn super::notify_outbox::NotifyQueue>, StoreError> {
    Ok(match config.backend {
        Backend::Sqlite => Box::new(super::notify_outbox::NotifyOutbox::open(&config.data_dir)?),
        Backend::Postgres => Box::new(super::postgres::PgNotifyOutbox::open(&config.postgres.url)?),
    })
}
