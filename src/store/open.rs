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
