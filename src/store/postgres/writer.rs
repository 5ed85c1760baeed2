//! The PostgreSQL store's write side: one connection owned by the writer thread, a batch in one
//! transaction (readings in one `unnest` insert, rollups merged per batch, the newest reading per
//! site), fencing by lease revision, and retention.

use super::batch::PgBatch;
use super::config::connect;
use super::known;
use super::schema;
use crate::store::config::StoreConfig;
use crate::store::hot::Hot;
use crate::store::registry::{Limits, Registry};
use crate::store::{BatchOutcome, Fence, Record, RetentionReport, StoreError, StoreWriter};
use dustwatch_protocol::SiteInfo;
use postgres::{Client, Transaction};
use std::sync::Arc;

/// The writer side of the PostgreSQL store.
pub struct PgStore {
    client: Client,
    config: StoreConfig,
    hot: Arc<Hot>,
    known: Registry,
    /// Append fresh readings, events and city levels to the outbox (export enabled).
    outbox: bool,
}

impl PgStore {
    /// Connect to `config.postgres.url`, migrate, and load what the writer remembers.
    pub fn open(config: StoreConfig, strict: bool) -> Result<PgStore, StoreError> {
        let mut client = connect(&config.postgres.url)?;
        schema::migrate(&mut client)?;
        let mut registry = Registry::new(strict, Limits::of(&config));
        known::load(&mut registry, &mut client)?;
        let hot = Arc::new(Hot::default());
        registry.warm(&hot);
        Ok(PgStore {
            client,
            hot,
            known: registry,
            config,
            outbox: false,
        })
    }

    /// Append every fresh reading, event and city level to the outbox from now on.
    pub fn set_outbox(&mut self, on: bool) {
        self.outbox = on;
    }

    /// The hot state this writer maintains; share it with readers.
    pub fn hot(&self) -> Arc<Hot> {
        self.hot.clone()
    }

    /// A reader on the same database sharing this writer's hot state.
    pub fn reader(&self) -> Result<super::PgReader, StoreError> {
        super::PgReader::open(&self.config.postgres, self.hot.clone())
    }

    /// The rules engine's writer on the same database.
    pub fn alert_store(&self) -> Result<super::PgAlertStore, StoreError> {
        super::PgAlertStore::open(&self.config.postgres.url)
    }

    /// A lost connection (server restart, network) is opened again before the next batch; the
    /// failed batch was reported transient and is retried by the caller.
    fn reconnect_if_closed(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            self.client = connect(&self.config.postgres.url)?;
            known::reload(&mut self.known, &mut self.client)?;
        }
        Ok(())
    }

    fn write(
        &mut self,
        batch: &[Record],
        fence: Option<Fence>,
    ) -> Result<BatchOutcome, StoreError> {
        self.reconnect_if_closed()?;
        let received = chrono::Utc::now().timestamp_millis();
        let outbox = self.outbox;
        let registry = &mut self.known;
        let result = (|| -> Result<PgBatch, StoreError> {
            let mut tx = self.client.transaction()?;
            if let Some(fence) = fence {
                check_fence(&mut tx, fence)?;
            }
            let mut w = PgBatch::new(received, outbox);
            w.write(&mut tx, registry, batch)?;
            tx.commit()?;
            Ok(w)
        })();
        let w = match result {
            Ok(w) => w,
            Err(e) => {
                // The transaction rolled back: forget in-memory registrations made inside it.
                known::reload(&mut self.known, &mut self.client)?;
                return Err(e);
            }
        };
        let (out, latest) = w.into_tally().finish();
        self.known.committed(latest, &self.hot);
        Ok(out)
    }
}

/// Record the lease revision of `fence` for its partition unless a newer one is stored. The
/// conflicting row stays locked until the transaction ends, so two owners cannot both pass.
fn check_fence(tx: &mut Transaction, fence: Fence) -> Result<(), StoreError> {
    let revision = i64::try_from(fence.revision)
        .map_err(|_| StoreError::Config(format!("lease revision {} too large", fence.revision)))?;
    let partition = i64::from(fence.partition);
    let stored = tx.query_opt(
        "INSERT INTO partition_fences (partition, revision) VALUES ($1, $2) \
         ON CONFLICT (partition) DO UPDATE SET revision = EXCLUDED.revision \
         WHERE partition_fences.revision <= EXCLUDED.revision RETURNING revision",
        &[&partition, &revision],
    )?;
    if stored.is_some() {
        return Ok(());
    }
    let current: i64 = tx
        .query_one(
            "SELECT revision FROM partition_fences WHERE partition = $1",
            &[&partition],
        )?
        .get(0);
    Err(StoreError::Fenced {
        partition: fence.partition,
        revision: fence.revision,
        current: u64::try_from(current).unwrap_or(0),
    })
}

impl StoreWriter for PgStore {
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchOutcome, StoreError> {
        self.write(batch, None)
    }

    fn write_batch_fenced(
        &mut self,
        batch: &[Record],
        fence: Fence,
    ) -> Result<BatchOutcome, StoreError> {
        self.write(batch, Some(fence))
    }

    fn upsert_sites(&mut self, sites: &[SiteInfo]) -> Result<(), StoreError> {
        self.reconnect_if_closed()?;
        let mut tx = self.client.transaction()?;
        for s in sites {
            tx.execute(
                "INSERT INTO sites (id, name, street, kind, phase, lat, lon, reference, registered) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, street = excluded.street, \
                 kind = excluded.kind, phase = excluded.phase, lat = excluded.lat, \
                 lon = excluded.lon, reference = excluded.reference, registered = true",
                &[
                    &s.id,
                    &s.name,
                    &s.street,
                    &s.kind.name(),
                    &s.phase.name(),
                    &s.lat,
                    &s.lon,
                    &s.reference,
                ],
            )?;
        }
        tx.commit()?;
        for s in sites {
            self.known.sites.insert(s.id.clone(), true);
        }
        Ok(())
    }

    fn apply_retention(&mut self, fleet_ms: i64) -> Result<RetentionReport, StoreError> {
        self.reconnect_if_closed()?;
        let mut tx = self.client.transaction()?;
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let (report, gone) = super::retention::apply(&mut tx, &self.config, fleet_ms, wall_ms)?;
        tx.commit()?;
        if !gone.is_empty() {
            self.hot.forget(&gone);
        }
        // Sites, devices and dead-letter counts changed underneath: read them back.
        known::reload(&mut self.known, &mut self.client)?;
        Ok(report)
    }

    fn fleet_clock(&self) -> Option<i64> {
        self.hot.fleet_clock()
    }

    fn retention_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.retention_every_s.max(1))
    }
}
