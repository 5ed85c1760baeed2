//! The SQLite store's write side: one connection owned by the writer task, batches committed
//! in one transaction each (readings, events, statuses, city levels, dead letters, rollups, the
//! newest reading per site), retention. The read side is `reader.rs`; WAL lets both run at once.

use super::checkpoint::Checkpointer;
pub use super::config::{StoreConfig, Synchronous};
use super::hot::Hot;
use super::known::{admit, DeviceState, Known, Limits};
use super::outbox::{self, OutboxKind};
use super::reader::SqliteReader;
use super::retention;
use super::rollup::{bucket, Agg};
use super::schema::{self, ROLLUPS};
use super::{BatchOutcome, Latest, Record, RetentionReport, StoreError, StoreWriter};
use dustwatch_protocol::{Flag, Metric, Reading, RejectReason, SiteInfo, StatusState};
use rusqlite::{params, Connection};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DB_FILE: &str = "dustwatch.db";

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// A read-write connection in WAL mode with the schema in place. WAL with `synchronous=NORMAL`
/// survives a crash of the process; busy_timeout lets the alert writer and the reading writer
/// take turns. Commits only append to the WAL: the [`Checkpointer`] copies it back.
pub(super) fn open_writer(dir: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let conn = Connection::open(db_path(dir))?;
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
}

/// Per-batch partial aggregates by (site, bucket), keyed by the batch's own strings.
type RollupDelta<'a> = HashMap<(&'a str, i64), [Agg; 9]>;

impl SqliteStore {
    /// Open (or create) the store under `config.data_dir`.
    pub fn open(config: StoreConfig, strict: bool) -> Result<SqliteStore, StoreError> {
        let conn = open_writer(&config.data_dir, config.synchronous)?;
        // The hot part of every b-tree (each site's and device's newest leaf) must stay cached,
        // or each batch reads it back from the OS: bounded, whatever the number of readings.
        conn.pragma_update(None, "cache_size", -i64::from(config.cache_mib) * 1024)?;
        outbox::create(&conn)?;
        let checkpointer = Checkpointer::start(&config.data_dir)?;
        if config.max_size_mib > 0 {
            // At the limit SQLite answers SQLITE_FULL, which the writer treats as a full disk.
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let bytes =
                i64::try_from(config.max_size_mib.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
            conn.pragma_update(None, "max_page_count", (bytes / page_size.max(512)).max(1))?;
        }
        let mut store = SqliteStore {
            conn,
            checkpointer,
            hot: Arc::new(Hot::default()),
            known: Known {
                strict,
                limits: Limits::of(&config),
                ..Default::default()
            },
            config,
            outbox: false,
        };
        store.known.load(&store.conn)?;
        store.hot.update(store.known.latest.clone());
        if let Some(t) = store.known.fleet_median() {
            store.hot.advance_fleet_clock(t);
        }
        Ok(store)
    }

    /// Append every fresh reading, event and city level to the outbox from now on (for the
    /// InfluxDB exporter). Off by default: nothing consumes the outbox then.
    pub fn set_outbox(&mut self, on: bool) {
        self.outbox = on;
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

/// The topic of a dead-lettered reply. The store does not know the configured root: the site
/// and device say where it came from.
fn root_less_reply_topic(site: &str, device: &str) -> String {
    format!("{site}/{device}/reply")
}

fn flags_json(r: &Reading) -> Option<String> {
    // Absent flags mean N; store only the abnormal ones to keep rows small.
    let abnormal: BTreeMap<&String, &Flag> =
        r.flags.iter().filter(|(_, f)| **f != Flag::N).collect();
    if abnormal.is_empty() {
        None
    } else {
        serde_json::to_string(&abnormal).ok()
    }
}

impl StoreWriter for SqliteStore {
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchOutcome, StoreError> {
        self.checkpointer.rewind_if_due(&self.conn);
        let received = now_ms();
        let mut out = BatchOutcome::default();
        let mut rejected: BTreeMap<RejectReason, u64> = BTreeMap::new();
        let mut deltas: [RollupDelta; 2] = [HashMap::new(), HashMap::new()];
        // The newest reading of each site in this batch, as (device, reading).
        let mut newest: HashMap<&str, (&str, &Reading)> = HashMap::new();
        let mut seen: HashMap<(&str, &str), i64> = HashMap::new();

        let known = &mut self.known;
        let use_outbox = self.outbox;
        let result = (|| -> Result<(), StoreError> {
            let tx = self.conn.transaction()?;
            // Prepared once per batch: the statement cache hashes the SQL text on every lookup.
            let mut insert_reading = tx.prepare_cached(
                "INSERT OR IGNORE INTO readings (site, ts, device, boot, seq, interval_s, pm25, \
                 pm10, tsp, noise_dba, temp_c, rh_pct, pressure_kpa, wind_ms, wind_deg, flags, \
                 received_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            for record in batch {
                // Set true below once the record is stored for the first time.
                out.fresh.push(false);
                let fresh = out.fresh.len() - 1;
                match record {
                    Record::Reading {
                        site,
                        device,
                        reading: r,
                    } => {
                        if !admit(
                            known,
                            &tx,
                            received,
                            site,
                            device,
                            "reading",
                            || r.encode(),
                            &mut rejected,
                        )? {
                            continue;
                        }
                        let n = insert_reading.execute(params![
                            site,
                            r.ts,
                            device,
                            r.boot,
                            r.seq,
                            r.interval_s,
                            r.pm25,
                            r.pm10,
                            r.tsp,
                            r.noise_dba,
                            r.temp_c,
                            r.rh_pct,
                            r.pressure_kpa,
                            r.wind_ms,
                            r.wind_deg,
                            flags_json(r),
                            received
                        ])?;
                        if n == 0 {
                            out.duplicates += 1;
                            continue;
                        }
                        out.stored += 1;
                        out.fresh[fresh] = true;
                        if use_outbox {
                            outbox::push(
                                &tx,
                                OutboxKind::Reading,
                                Some(site),
                                Some(device),
                                Some(r.boot),
                                Some(r.seq),
                                r.ts,
                            )?;
                        }
                        for (i, (_, width)) in ROLLUPS.iter().enumerate() {
                            let aggs = deltas[i]
                                .entry((site.as_str(), bucket(r.ts, *width)))
                                .or_default();
                            for (j, m) in Metric::ALL.into_iter().enumerate() {
                                if let Some(v) = r.valid(m) {
                                    aggs[j].add(v);
                                }
                            }
                        }
                        let newest_ts = match newest.get(site.as_str()) {
                            Some((_, l)) => Some(l.ts),
                            None => known.latest.get(site).map(|l| l.reading.ts),
                        };
                        if newest_ts.is_none_or(|ts| ts <= r.ts) {
                            newest.insert(site, (device, r));
                        }
                        seen.insert((site, device), received);
                    }
                    Record::Event {
                        site,
                        device,
                        event,
                    } => {
                        let payload = || serde_json::to_vec(event).unwrap_or_default();
                        if !admit(
                            known,
                            &tx,
                            received,
                            site,
                            device,
                            "event",
                            payload,
                            &mut rejected,
                        )? {
                            continue;
                        }
                        let n = tx
                            .prepare_cached(
                                "INSERT OR IGNORE INTO events (site, device, boot, seq, ts, kind, \
                                 received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            )?
                            .execute(params![
                                site,
                                device,
                                event.boot,
                                event.seq,
                                event.ts,
                                event.kind.name(),
                                received
                            ])?;
                        if n == 0 {
                            out.duplicates += 1;
                        } else {
                            out.other += 1;
                            out.fresh[fresh] = true;
                            if use_outbox {
                                outbox::push(
                                    &tx,
                                    OutboxKind::Event,
                                    Some(site),
                                    Some(device),
                                    Some(event.boot),
                                    Some(event.seq),
                                    event.ts,
                                )?;
                            }
                        }
                        seen.insert((site, device), received);
                    }
                    Record::Status {
                        site,
                        device,
                        status,
                    } => {
                        let payload = || serde_json::to_vec(status).unwrap_or_default();
                        if !admit(
                            known,
                            &tx,
                            received,
                            site,
                            device,
                            "status",
                            payload,
                            &mut rejected,
                        )? {
                            continue;
                        }
                        let state = match status.state {
                            StatusState::Online => "online",
                            StatusState::Offline => "offline",
                        };
                        let old = known.device(site, device);
                        let new = DeviceState {
                            state: Some(state.to_string()),
                            // The last will carries only the state: keep what we knew.
                            fw: status.fw.clone().or_else(|| old.and_then(|d| d.fw.clone())),
                            boot: status.boot.or_else(|| old.and_then(|d| d.boot)),
                            interval_s: status
                                .interval_s
                                .or_else(|| old.and_then(|d| d.interval_s)),
                        };
                        // A retained status is redelivered at every reconnect: history keeps
                        // changes only.
                        if old != Some(&new) {
                            tx.prepare_cached(
                                "INSERT INTO status_history (site, device, received_ms, ts, \
                                 state, fw, boot, interval_s) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            )?
                            .execute(params![
                                site,
                                device,
                                received,
                                status.ts,
                                state,
                                new.fw,
                                new.boot,
                                new.interval_s
                            ])?;
                            tx.prepare_cached(
                                "UPDATE devices SET state = ?3, fw = ?4, boot = ?5, \
                                 interval_s = ?6 WHERE site = ?1 AND device = ?2",
                            )?
                            .execute(params![
                                site,
                                device,
                                state,
                                new.fw,
                                new.boot,
                                new.interval_s
                            ])?;
                            known.set_device(site, device, new);
                        }
                        out.other += 1;
                    }
                    Record::CityLevel { level, source } => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO city_levels (ts, level, source) \
                             VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![
                            level.ts,
                            level.level.name(),
                            source
                        ])?;
                        out.other += 1;
                        out.fresh[fresh] = true;
                        if use_outbox {
                            outbox::push(
                                &tx,
                                OutboxKind::CityLevel,
                                None,
                                None,
                                None,
                                None,
                                level.ts,
                            )?;
                        }
                    }
                    Record::CommandReply {
                        site,
                        device,
                        reply,
                    } => {
                        use super::commands::{record_reply, ReplyOutcome};
                        match record_reply(&tx, site, device, reply, received)? {
                            ReplyOutcome::Recorded => {
                                out.other += 1;
                                out.fresh[fresh] = true;
                            }
                            ReplyOutcome::Duplicate => out.duplicates += 1,
                            ReplyOutcome::Unknown => {
                                let detail = format!(
                                    "no command `{}` was sent to {site}/{device}",
                                    reply.id
                                );
                                known.dead_letter(
                                    &tx,
                                    received,
                                    &root_less_reply_topic(site, device),
                                    &reply.encode(),
                                    RejectReason::StoreRefused,
                                    &detail,
                                )?;
                                *rejected.entry(RejectReason::StoreRefused).or_default() += 1;
                            }
                        }
                    }
                    Record::DeadLetter(d) => {
                        known.dead_letter(
                            &tx, received, &d.topic, &d.payload, d.reason, &d.detail,
                        )?;
                        *rejected.entry(d.reason).or_default() += 1;
                    }
                }
            }
            for (i, (table, _)) in ROLLUPS.iter().enumerate() {
                let mut stmt = tx.prepare_cached(&schema::rollup_upsert(table))?;
                for ((site, b), aggs) in &deltas[i] {
                    let mut values: Vec<rusqlite::types::Value> =
                        vec![site.to_string().into(), (*b).into()];
                    for a in aggs {
                        values.push((a.n as f64).into());
                        values.push(a.sum.into());
                        values.push(a.lo.into());
                        values.push(a.hi.into());
                    }
                    stmt.execute(rusqlite::params_from_iter(values))?;
                }
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO latest (site, device, reading, received_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (site, (device, reading)) in &newest {
                    let json = serde_json::to_string(reading)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    stmt.execute(params![site, device, json, received])?;
                }
                let mut stmt = tx.prepare_cached(
                    "UPDATE devices SET last_seen_ms = ?3 WHERE site = ?1 AND device = ?2",
                )?;
                for ((site, device), at) in &seen {
                    stmt.execute(params![site, device, at])?;
                }
            }
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
        let new_latest: Vec<(String, Latest)> = newest
            .into_iter()
            .map(|(site, (device, reading))| {
                let latest = Latest {
                    device: device.to_string(),
                    reading: reading.clone(),
                    received_ms: received,
                };
                (site.to_string(), latest)
            })
            .collect();
        self.hot.update(new_latest.iter().cloned());
        self.known.latest.extend(new_latest);
        if let Some(t) = self.known.fleet_median() {
            self.hot.advance_fleet_clock(t);
        }
        out.rejected = rejected.into_iter().collect();
        Ok(out)
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
                newest_ts: self.known.latest.get(id).map(|l| l.reading.ts),
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
