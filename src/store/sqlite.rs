//! SQLite implementation of the store: one writer connection owned by the writer task, a small
//! pool of read-only connections for the web. WAL mode lets readers run beside the writer.

use super::alerts::{self, AlertChange, AlertFilter, AlertRow, DayRow};
use super::checkpoint::Checkpointer;
use super::dead_letters::{Caps, DeadLetters};
use super::hot::{fleet_median, Hot};
use super::outbox::{self, OutboxKind};
use super::retention;
use super::schema::{self, ROLLUPS};
use super::{
    BatchOutcome, Counts, DeviceRow, Latest, Record, RetentionReport, SeriesPoint, SiteRow,
    StoreError, StoreReader, StoreWriter,
};
use dustwatch_protocol::{
    CityLevel, Flag, Level, Metric, Phase, Reading, RejectReason, SiteInfo, SiteKind, StatusState,
};
use rusqlite::{params, Connection, OpenFlags, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Settings of the embedded store (`[store]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding `dustwatch.db`. Default `./dustwatch-data`.
    pub data_dir: PathBuf,
    /// Raw readings older than this (in event time) are deleted. Default 30 days.
    pub raw_retention_days: u32,
    /// 1-minute and 1-hour rollups are kept this long. Default 730 days (2 years).
    pub rollup_retention_days: u32,
    /// `normal` survives a crash of the process (kill -9); `full` also a power loss, at a cost in
    /// commit latency. Default `normal`.
    pub synchronous: Synchronous,
    /// Page cache of the writer connection, MiB: holds the newest leaf of every site's and
    /// device's series, so a batch writes pages without reading them back. Default 32.
    pub cache_mib: u32,
    /// Largest database file, MiB; at the limit ingest waits (acknowledging nothing) as on a
    /// full disk, and `/healthz` says so. 0 = no limit but the disk. Default 0.
    pub max_size_mib: u64,
    /// Wall-clock seconds between retention passes. Default 600.
    pub retention_every_s: u64,
    /// A retention pass that would delete more than this share of a table's time span leaves
    /// the table alone and says why (a clock gone wrong must not empty the store). Default 0.5.
    pub retention_max_share: f64,
    /// Sites not in the registry that messages may create; beyond it their messages are
    /// `unknown_site` dead letters. Default 500.
    pub max_unregistered_sites: u32,
    /// Devices one site may have; beyond it, `unknown_device` dead letters. Default 64.
    pub max_devices_per_site: u32,
    /// Dead letters kept in all; the oldest go first. Default 200 000.
    pub max_dead_letters: u64,
    /// Dead letters kept per source (the site named in the topic, or the HJ 212 peer), so one
    /// noisy source cannot push out the others'. Default 10 000.
    pub max_dead_letters_per_source: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    Normal,
    Full,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./dustwatch-data"),
            raw_retention_days: 30,
            rollup_retention_days: 730,
            synchronous: Synchronous::Normal,
            cache_mib: 32,
            max_size_mib: 0,
            retention_every_s: 600,
            retention_max_share: 0.5,
            max_unregistered_sites: 500,
            max_devices_per_site: 64,
            max_dead_letters: 200_000,
            max_dead_letters_per_source: 10_000,
        }
    }
}

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

/// What the writer remembers between batches so it does not ask SQLite on every reading.
#[derive(Default)]
struct Known {
    strict: bool,
    limits: Limits,
    /// site id -> registered
    sites: HashMap<String, bool>,
    unregistered: usize,
    dead: DeadLetters,
    /// site -> device -> state; nested so a lookup borrows the record's strings.
    devices: HashMap<String, HashMap<String, DeviceState>>,
    latest: HashMap<String, Latest>,
}

/// Caps on what messages may create.
#[derive(Debug, Default, Clone, Copy)]
struct Limits {
    unregistered_sites: usize,
    devices_per_site: usize,
    dead_letters: Caps,
}

impl Limits {
    fn of(config: &StoreConfig) -> Limits {
        Limits {
            unregistered_sites: config.max_unregistered_sites as usize,
            devices_per_site: config.max_devices_per_site.max(1) as usize,
            dead_letters: Caps {
                total: config.max_dead_letters,
                per_source: config.max_dead_letters_per_source,
            },
        }
    }
}

/// Whether a record's site and device may be stored.
enum Admit {
    Yes,
    Refused(RejectReason, String),
}

#[derive(Debug, Default, Clone, PartialEq)]
struct DeviceState {
    state: Option<String>,
    fw: Option<String>,
    boot: Option<u32>,
    interval_s: Option<u32>,
}

/// Partial aggregate of one metric in one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Agg {
    n: u64,
    sum: f64,
    lo: Option<f64>,
    hi: Option<f64>,
}

impl Agg {
    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.lo = Some(self.lo.map_or(v, |x| x.min(v)));
        self.hi = Some(self.hi.map_or(v, |x| x.max(v)));
    }
}

/// Per-batch partial aggregates by (site, bucket), keyed by the batch's own strings.
type RollupDelta<'a> = HashMap<(&'a str, i64), [Agg; 9]>;

impl Known {
    /// Forget everything and read it back (after a rolled-back batch or a retention pass).
    fn reload(&mut self, conn: &Connection) -> Result<(), StoreError> {
        *self = Known {
            strict: self.strict,
            limits: self.limits,
            ..Default::default()
        };
        self.load(conn)
    }

    fn load(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let mut stmt = conn.prepare("SELECT id, registered FROM sites")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        for row in rows {
            let (id, reg) = row?;
            self.unregistered += usize::from(!reg);
            self.sites.insert(id, reg);
        }
        self.dead = DeadLetters::load(conn)?;
        let mut stmt =
            conn.prepare("SELECT site, device, state, fw, boot, interval_s FROM devices")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                DeviceState {
                    state: r.get(2)?,
                    fw: r.get(3)?,
                    boot: r.get(4)?,
                    interval_s: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let ((site, device), v) = row?;
            self.devices.entry(site).or_default().insert(device, v);
        }
        drop(stmt);
        for (site, latest) in read_latest(conn)? {
            self.latest.insert(site, latest);
        }
        Ok(())
    }

    /// Make sure the site is known: a strict registry refuses an unknown one, and so does the
    /// cap on unregistered sites (any topic would otherwise create a site).
    fn admit_site(&mut self, tx: &Transaction, site: &str) -> Result<Admit, StoreError> {
        if self.sites.contains_key(site) {
            return Ok(Admit::Yes);
        }
        if self.strict {
            return Ok(Admit::Refused(
                RejectReason::UnknownSite,
                "site is not in the strict registry".into(),
            ));
        }
        if self.unregistered >= self.limits.unregistered_sites {
            return Ok(Admit::Refused(
                RejectReason::UnknownSite,
                format!(
                    "site is not in the registry and {} unregistered sites exist already \
                     ([store] max_unregistered_sites)",
                    self.unregistered
                ),
            ));
        }
        // Unknown sites are shown to the office as unregistered; nothing is dropped.
        tx.execute(
            "INSERT OR IGNORE INTO sites (id, name, street, kind, phase, registered) \
             VALUES (?1, ?1, '', 'construction', 'idle', 0)",
            params![site],
        )?;
        self.sites.insert(site.to_string(), false);
        self.unregistered += 1;
        Ok(Admit::Yes)
    }

    fn admit_device(
        &mut self,
        tx: &Transaction,
        site: &str,
        device: &str,
    ) -> Result<Admit, StoreError> {
        if self.device(site, device).is_some() {
            return Ok(Admit::Yes);
        }
        let n = self.devices.get(site).map_or(0, HashMap::len);
        if n >= self.limits.devices_per_site {
            return Ok(Admit::Refused(
                RejectReason::UnknownDevice,
                format!("site has {n} devices already ([store] max_devices_per_site)"),
            ));
        }
        tx.execute(
            "INSERT OR IGNORE INTO devices (site, device) VALUES (?1, ?2)",
            params![site, device],
        )?;
        self.set_device(site, device, DeviceState::default());
        Ok(Admit::Yes)
    }

    /// Keep a rejected message (bounded per source and in all).
    fn dead_letter(
        &mut self,
        tx: &Transaction,
        received: i64,
        topic: &str,
        payload: &[u8],
        reason: RejectReason,
        detail: &str,
    ) -> Result<(), StoreError> {
        let caps = self.limits.dead_letters;
        self.dead
            .insert(tx, caps, received, topic, payload, reason, detail)
    }

    /// The fleet clock from the sites' newest readings: registered sites when any reports.
    fn fleet_median(&self) -> Option<i64> {
        let newest = |registered: bool| -> Vec<i64> {
            self.latest
                .iter()
                .filter(|(site, _)| !registered || self.sites.get(*site) == Some(&true))
                .map(|(_, l)| l.reading.ts)
                .collect()
        };
        let registered = newest(true);
        fleet_median(if registered.is_empty() {
            newest(false)
        } else {
            registered
        })
    }

    fn device(&self, site: &str, device: &str) -> Option<&DeviceState> {
        self.devices.get(site)?.get(device)
    }

    fn set_device(&mut self, site: &str, device: &str, state: DeviceState) {
        self.devices
            .entry(site.to_string())
            .or_default()
            .insert(device.to_string(), state);
    }
}

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

/// Register the site and device of a record, or keep the record as a dead letter when they are
/// refused (`payload` rebuilds its raw form). Returns false when refused.
#[allow(clippy::too_many_arguments)]
fn admit(
    known: &mut Known,
    tx: &Transaction,
    received: i64,
    site: &str,
    device: &str,
    kind: &str,
    payload: impl FnOnce() -> Vec<u8>,
    rejected: &mut BTreeMap<RejectReason, u64>,
) -> Result<bool, StoreError> {
    let verdict = match known.admit_site(tx, site)? {
        Admit::Yes => known.admit_device(tx, site, device)?,
        refused => refused,
    };
    let Admit::Refused(reason, detail) = verdict else {
        return Ok(true);
    };
    known.dead_letter(
        tx,
        received,
        &format!("{site}/{device}/{kind}"),
        &payload(),
        reason,
        &detail,
    )?;
    *rejected.entry(reason).or_default() += 1;
    Ok(false)
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

fn bucket(ts: i64, width: i64) -> i64 {
    // ts is the END of the interval: (b, b + width] belongs to bucket b.
    (ts - 1).div_euclid(width) * width
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

fn read_latest(conn: &Connection) -> Result<Vec<(String, Latest)>, StoreError> {
    let mut stmt = conn.prepare("SELECT site, device, reading, received_ms FROM latest")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (site, device, json, received_ms) = row?;
        let reading: Reading =
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        out.push((
            site,
            Latest {
                device,
                reading,
                received_ms,
            },
        ));
    }
    Ok(out)
}

/// The read side: a small pool of read-only connections.
pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    hot: Arc<Hot>,
}

/// Connections kept idle in the pool.
const POOL_SIZE: usize = 4;

impl SqliteReader {
    pub fn open(dir: &Path, hot: Arc<Hot>) -> Result<SqliteReader, StoreError> {
        let reader = SqliteReader {
            path: db_path(dir),
            pool: Mutex::new(Vec::new()),
            hot,
        };
        let conn = reader.connect()?;
        reader.put(conn);
        Ok(reader)
    }

    pub fn hot(&self) -> &Arc<Hot> {
        &self.hot
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&conn);
        self.put(conn);
        result
    }

    fn put(&self, conn: Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(conn);
        }
    }
}

fn parse_enum<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| StoreError::Corrupt(format!("`{s}`: {e}")))
}

impl StoreReader for SqliteReader {
    fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        self.with(|c| alerts::query_alerts(c, filter))
    }

    fn alert_history(&self, id: i64) -> Result<Vec<AlertChange>, StoreError> {
        self.with(|c| alerts::query_history(c, id))
    }

    fn days(&self, from: &str, to: &str) -> Result<Vec<DayRow>, StoreError> {
        self.with(|c| alerts::query_days(c, from, to))
    }

    fn sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, street, kind, phase, lat, lon, reference, registered \
                 FROM sites ORDER BY street, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, bool>(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, street, kind, phase, lat, lon, reference, registered) = row?;
                out.push(SiteRow {
                    info: SiteInfo {
                        id,
                        name,
                        street,
                        kind: parse_enum::<SiteKind>(&kind)?,
                        phase: parse_enum::<Phase>(&phase)?,
                        lat,
                        lon,
                        reference,
                    },
                    registered,
                });
            }
            Ok(out)
        })
    }

    fn devices(&self, site: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT site, device, state, fw, boot, interval_s, last_seen_ms FROM devices \
                 WHERE ?1 IS NULL OR site = ?1 ORDER BY site, device",
            )?;
            let rows = stmt.query_map(params![site], |r| {
                Ok(DeviceRow {
                    site: r.get(0)?,
                    device: r.get(1)?,
                    state: r.get(2)?,
                    fw: r.get(3)?,
                    boot: r.get(4)?,
                    interval_s: r.get(5)?,
                    last_seen_ms: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn latest(&self) -> Result<Vec<(String, Latest)>, StoreError> {
        self.with(read_latest)
    }

    fn series(
        &self,
        site: &str,
        metric: Metric,
        from_ms: i64,
        to_ms: i64,
        step_s: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        if !(1..=31 * 86_400).contains(&step_s) {
            return Err(StoreError::BadStep(step_s));
        }
        let step_ms = step_s * 1000;
        // Read the coarsest rollup whose buckets tile the step; raw only for sub-minute steps.
        let source = ROLLUPS
            .iter()
            .rev()
            .find(|(_, width)| step_ms % width == 0)
            .copied();
        let mut points: BTreeMap<i64, Agg> = BTreeMap::new();
        self.with(|c| {
            match source {
                Some((table, _)) => {
                    let [n, s, lo, hi] = schema::rollup_cols(metric);
                    let mut stmt = c.prepare(&format!(
                        "SELECT bucket, {n}, {s}, {lo}, {hi} FROM {table} \
                         WHERE site = ?1 AND bucket >= ?2 AND bucket < ?3 AND {n} > 0 \
                         ORDER BY bucket"
                    ))?;
                    let mut rows = stmt.query(params![site, from_ms, to_ms])?;
                    while let Some(r) = rows.next()? {
                        let b: i64 = r.get(0)?;
                        let n: f64 = r.get(1)?;
                        let agg = points.entry(b.div_euclid(step_ms) * step_ms).or_default();
                        agg.n += n as u64;
                        agg.sum += r.get::<_, f64>(2)?;
                        let (l, h): (f64, f64) = (r.get(3)?, r.get(4)?);
                        agg.lo = Some(agg.lo.map_or(l, |x| x.min(l)));
                        agg.hi = Some(agg.hi.map_or(h, |x| x.max(h)));
                    }
                }
                None => {
                    let col = metric.name();
                    let mut stmt = c.prepare(&format!(
                        "SELECT ts, {col}, flags FROM readings \
                         WHERE site = ?1 AND ts > ?2 AND ts <= ?3 AND {col} IS NOT NULL"
                    ))?;
                    let mut rows = stmt.query(params![site, from_ms, to_ms])?;
                    while let Some(r) = rows.next()? {
                        let ts: i64 = r.get(0)?;
                        let v: f64 = r.get(1)?;
                        let flags: Option<String> = r.get(2)?;
                        if flags.is_some_and(|f| flag_invalid(&f, metric)) {
                            continue;
                        }
                        points.entry(bucket(ts, step_ms)).or_default().add(v);
                    }
                }
            }
            Ok(())
        })?;
        Ok(points
            .into_iter()
            .filter(|(_, a)| a.n > 0)
            .map(|(ts, a)| SeriesPoint {
                ts,
                mean: a.sum / a.n as f64,
                min: a.lo.unwrap_or(f64::NAN),
                max: a.hi.unwrap_or(f64::NAN),
                count: a.n,
            })
            .collect())
    }

    fn readings(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Reading)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT device, ts, boot, seq, interval_s, pm25, pm10, tsp, noise_dba, temp_c, \
                 rh_pct, pressure_kpa, wind_ms, wind_deg, flags FROM readings \
                 WHERE site = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
            )?;
            let mut rows = stmt.query(params![site, from_ms, to_ms])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let flags: Option<String> = r.get(14)?;
                let reading = Reading {
                    ts: r.get(1)?,
                    boot: r.get(2)?,
                    seq: r.get(3)?,
                    interval_s: r.get(4)?,
                    pm25: r.get(5)?,
                    pm10: r.get(6)?,
                    tsp: r.get(7)?,
                    noise_dba: r.get(8)?,
                    temp_c: r.get(9)?,
                    rh_pct: r.get(10)?,
                    pressure_kpa: r.get(11)?,
                    wind_ms: r.get(12)?,
                    wind_deg: r.get(13)?,
                    flags: match flags {
                        Some(f) => serde_json::from_str(&f)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        None => BTreeMap::new(),
                    },
                };
                out.push((r.get(0)?, reading));
            }
            Ok(out)
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        self.with(|c| {
            let one = |sql: &str| -> Result<u64, StoreError> {
                Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
            };
            Ok(Counts {
                readings: one("SELECT count(*) FROM readings")?,
                events: one("SELECT count(*) FROM events")?,
                dead_letters: one("SELECT count(*) FROM dead_letters")?,
                sites: one("SELECT count(*) FROM sites")?,
                devices: one("SELECT count(*) FROM devices")?,
            })
        })
    }

    fn events(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, dustwatch_protocol::Event)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT device, ts, seq, boot, kind FROM events \
                 WHERE site = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
            )?;
            let mut rows = stmt.query(params![site, from_ms, to_ms])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let kind: String = r.get(4)?;
                out.push((
                    r.get(0)?,
                    dustwatch_protocol::Event {
                        ts: r.get(1)?,
                        seq: r.get(2)?,
                        boot: r.get(3)?,
                        kind: parse_enum(&kind)?,
                    },
                ));
            }
            Ok(out)
        })
    }

    fn city_levels(&self) -> Result<Vec<CityLevel>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT ts, level FROM city_levels ORDER BY ts")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (ts, level) = row?;
                let level = Level::from_str(&level).map_err(StoreError::Corrupt)?;
                out.push(CityLevel { level, ts });
            }
            Ok(out)
        })
    }
}

fn flag_invalid(flags_json: &str, metric: Metric) -> bool {
    serde_json::from_str::<BTreeMap<String, Flag>>(flags_json)
        .ok()
        .and_then(|m| m.get(metric.name()).copied())
        .is_some_and(|f| !f.is_valid())
}
