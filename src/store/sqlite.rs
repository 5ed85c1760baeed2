//! The SQLite store's write side: one connection owned by the writer task, batches committed
//! in one transaction each (readings, events, statuses, city levels, dead letters, rollups, the
//! newest reading per site), retention. The read side is `reader.rs`; WAL lets both run at once.

use super::checkpoint::Checkpointer;
pub use super::config::{StoreConfig, Synchronous};
pub use super::connection::db_path;
use super::connection::open_writer;
use super::fence::Fence;
use super::hot::Hot;
use super::known::Known;
use super::outbox;
use super::reader::SqliteReader;
use super::registry::Limits;
use super::retention;
use super::sqlite_batch::{BatchWrite, INSERT_READING};
use super::{BatchOutcome, Record, RetentionReport, StoreError, StoreWriter};
use dustwatch_protocol::SiteInfo;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;

/// Refuse a fence older than the partition's stored revision, else store its revision: a new
/// owner's first batch shuts out every older owner from then on.
fn check_fence(tx: &rusqlite::Transaction, fence: Fence) -> Result<(), StoreError> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT revision FROM partition_fences WHERE partition = ?1")?
        .query_row(params![fence.partition], |r| r.get(0))
        .optional()?;
    // Revisions are stored as SQLite integers (i64); a revision past i64::MAX is out of reach.
    let revision = i64::try_from(fence.revision).unwrap_or(i64::MAX);
    if let Some(current) = current {
        if current > revision {
            return Err(StoreError::Fenced {
                partition: fence.partition,
                revision: fence.revision,
                current: u64::try_from(current).unwrap_or(0),
            });
        }
    }
    tx.prepare_cached(
        "INSERT INTO partition_fences (partition, revision) VALUES (?1, ?2) \
         ON CONFLICT (partition) DO UPDATE SET revision = excluded.revision",
    )?
    .execute(params![fence.partition, revision])?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The writer side.
pub struct SqliteStore {
    conn: Connection,
    /// Declared after `conn`: its last checkpoint runs once the writer connection is closed.
    checkpointer: Checkpointer,
    config: StoreConfig,
    hot: Arc<Hot>,
    known: Known,
    /// Append fresh readings, events and city levels to the outbox (export enabled).
    outbox: bool,
    /// Queue fresh readings for HJ 212 forwarding (targets configured).
    forward: bool,
}

impl SqliteStore {
    /// Open (or create) the store under `config.data_dir`.
    pub fn open(config: StoreConfig, strict: bool) -> Result<SqliteStore, StoreError> {
        let conn = open_writer(&config.data_dir, config.synchronous)?;
        // The hot part of every b-tree (each site's and device's newest leaf) must stay cached,
        // or each batch reads it back from the OS: bounded, whatever the number of readings.
        conn.pragma_update(None, "cache_size", -i64::from(config.cache_mib) * 1024)?;
        outbox::create(&conn)?;
        super::forward_queue::create(&conn)?;
        let checkpointer = Checkpointer::start(&config.data_dir)?;
        if config.max_size_mib > 0 {
            // At the limit SQLite answers SQLITE_FULL, which the writer treats as a full disk.
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let bytes =
                i64::try_from(config.max_size_mib.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
            conn.pragma_update(None, "max_page_count", (bytes / page_size.max(512)).max(1))?;
        }
        let known = Known::open(&conn, strict, Limits::of(&config))?;
        let hot = Arc::new(Hot::default());
        known.warm(&hot);
        Ok(SqliteStore {
            conn,
            checkpointer,
            config,
            hot,
            known,
            outbox: false,
            forward: false,
        })
    }

    /// Append every fresh reading, event and city level to the outbox from now on (for the
    /// InfluxDB exporter). Off by default: nothing consumes the outbox then.
    pub fn set_outbox(&mut self, on: bool) {
        self.outbox = on;
    }

    /// Queue every fresh reading for HJ 212 forwarding from now on (`[[hj212.forward]]`).
    pub fn set_forward_queue(&mut self, on: bool) {
        self.forward = on;
    }

    /// The hot state this writer maintains; share it with readers.
    pub fn hot(&self) -> Arc<Hot> {
        self.hot.clone()
    }

    /// A reader on the same database sharing this writer's hot state.
    pub fn reader(&self) -> Result<SqliteReader, StoreError> {
        SqliteReader::open(&self.config.data_dir, self.hot.clone())
    }
}

impl SqliteStore {
    /// One batch in one transaction; with a fence, the partition's stored revision is checked
    /// and advanced in that same transaction, before anything is written.
    fn write(
        &mut self,
        batch: &[Record],
        fence: Option<Fence>,
    ) -> Result<BatchOutcome, StoreError> {
        self.checkpointer.rewind_if_due(&self.conn);
        let received = now_ms();
        let mut w = BatchWrite::new(received, self.outbox, self.forward);
        let known = &mut self.known;
        let result = (|| -> Result<(), StoreError> {
            let tx = self.conn.transaction()?;
            if let Some(fence) = fence {
                check_fence(&tx, fence)?;
            }
            let mut insert_reading = tx.prepare_cached(INSERT_READING)?;
            for record in batch {
                w.begin_record();
                match record {
                    Record::Reading {
                        site,
                        device,
                        reading,
                    } => w.reading(&tx, &mut insert_reading, known, site, device, reading)?,
                    Record::Event {
                        site,
                        device,
                        event,
                    } => w.event(&tx, known, site, device, event)?,
                    Record::Status {
                        site,
                        device,
                        status,
                    } => w.status(&tx, known, site, device, status)?,
                    Record::CityLevel { level, source } => w.city_level(&tx, level, source)?,
                    Record::CommandReply {
                        site,
                        device,
                        reply,
                    } => w.command_reply(&tx, known, site, device, reply)?,
                    Record::DeadLetter(d) => w.dead_letter(&tx, known, d)?,
                }
            }
            w.finish(&tx)?;
            drop(insert_reading);
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            // The transaction rolled back: forget in-memory registrations made inside it.
            self.known.reload(&self.conn)?;
            return Err(e);
        }
        self.checkpointer.poke();
        let (out, latest) = w.into_tally().finish();
        self.known.committed(latest, &self.hot);
        Ok(out)
    }
}

impl StoreWriter for SqliteStore {
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
        let tx = self.conn.transaction()?;
        for s in sites {
            tx.execute(
                "INSERT INTO sites (id, name, street, kind, phase, lat, lon, reference, registered) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, street = excluded.street, \
                 kind = excluded.kind, phase = excluded.phase, lat = excluded.lat, \
                 lon = excluded.lon, reference = excluded.reference, registered = 1",
                params![
                    s.id,
                    s.name,
                    s.street,
                    s.kind.name(),
                    s.phase.name(),
                    s.lat,
                    s.lon,
                    s.reference
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
        let sites: Vec<retention::SiteAge> = self
            .known
            .sites
            .iter()
            .map(|(id, registered)| retention::SiteAge {
                id,
                registered: *registered,
                newest_ts: self.known.latest.get(id).map(|l| l.reading.ts.ms()),
            })
            .collect();
        let tx = self.conn.transaction()?;
        let (report, gone) = retention::apply(&tx, &self.config, &sites, fleet_ms, now_ms())?;
        tx.commit()?;
        if !gone.is_empty() {
            self.hot.forget(&gone);
        }
        // Sites, devices and dead-letter counts changed underneath: read them back.
        self.known.reload(&self.conn)?;
        Ok(report)
    }

    fn fleet_clock(&self) -> Option<i64> {
        self.hot.fleet_clock()
    }

    fn retention_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.retention_every_s.max(1))
    }
}
