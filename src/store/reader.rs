//! The read side of the SQLite store: a small pool of read-only connections beside the writer
//! (WAL lets them read while it writes), and the hot state it shares.

use super::alerts::{self, Alert, AlertChange, AlertFilter, DayRow};
use super::connection::db_path;
use super::hot::Hot;
use super::reading_rows::{self, parse_enum};
use super::rollup::{bucket, series_points, series_source, Agg};
use super::schema;
use super::sql::sqlite;
use super::{Counts, DeviceRow, Latest, SeriesPoint, SiteRow, StoreError, StoreReader};
use dustwatch_protocol::{CityLevel, Flag, Level, Metric, Phase, Reading, SiteInfo, SiteKind};
use rusqlite::{params, Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

pub(super) fn read_latest(conn: &Connection) -> Result<Vec<(String, Latest)>, StoreError> {
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

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    pub(super) fn with<T>(
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

/// A column holding an enum's name (strum's `FromStr`, the same words as serde's).
impl StoreReader for SqliteReader {
    fn hot(&self) -> &Arc<Hot> {
        &self.hot
    }

    fn raw_frames(
        &self,
        q: &super::raw_frames::RawFrameQuery,
    ) -> Result<Vec<super::raw_frames::RawFrameRow>, StoreError> {
        self.with(|c| super::raw_frames::query(c, q))
    }

    fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        self.with(|c| alerts::query_alerts(c, filter))
    }

    fn alert_history(&self, id: i64) -> Result<Vec<AlertChange>, StoreError> {
        self.with(|c| alerts::query_history(c, id))
    }

    fn days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<DayRow>, StoreError> {
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
        let (step_ms, source) = series_source(step_s)?;
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
        Ok(series_points(points))
    }

    fn readings(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Reading)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&sqlite(&reading_rows::readings_between()))?;
            let mut rows = stmt.query(params![site, from_ms, to_ms])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(reading_rows::reading_of(r)?);
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
            let mut stmt = c.prepare_cached(&sqlite(reading_rows::EVENTS_BETWEEN))?;
            let mut rows = stmt.query(params![site, from_ms, to_ms])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(reading_rows::event_of(r)?);
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
