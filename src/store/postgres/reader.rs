//! The read side of the PostgreSQL store: queries through the connection threads of
//! [`Pool`], and the hot copy of the newest readings, refreshed from the `latest` table so the
//! pages of every instance see what the others wrote.

use super::alerts;
use super::config::PostgresConfig;
use super::pool::Pool;
use crate::store::hot::{fleet_median, Hot};
use crate::store::reading_rows::{self, flags_of, parse_enum};
use crate::store::rollup::{bucket, series_points, series_source, Agg};
use crate::store::schema::rollup_cols;
use crate::store::{
    Alert, AlertChange, AlertFilter, Counts, DayRow, DeviceRow, Latest, SeriesPoint, SiteRow,
    StoreError, StoreReader,
};
use dustwatch_protocol::{CityLevel, Event, Level, Metric, Phase, Reading, SiteInfo, SiteKind};
use postgres::GenericClient;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub(super) fn read_latest(c: &mut impl GenericClient) -> Result<Vec<(String, Latest)>, StoreError> {
    let mut out = Vec::new();
    for row in c.query("SELECT site, device, reading, received_ms FROM latest", &[])? {
        let reading: Reading =
            serde_json::from_str(row.get(2)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        out.push((
            row.get(0),
            Latest {
                device: row.get(1),
                reading,
                received_ms: row.get(3),
            },
        ));
    }
    Ok(out)
}

/// The PostgreSQL reader.
pub struct PgReader {
    pool: Arc<Pool>,
    hot: Arc<Hot>,
}

impl PgReader {
    /// Start the reader connections and the refresh of the hot copy (it stops with the reader).
    pub fn open(config: &PostgresConfig, hot: Arc<Hot>) -> Result<PgReader, StoreError> {
        let pool = Arc::new(Pool::start(&config.url, config.readers)?);
        let every = Duration::from_secs(config.refresh_s.max(1));
        let (weak, hot_ref) = (Arc::downgrade(&pool), hot.clone());
        std::thread::Builder::new()
            .name("pg-hot-refresh".into())
            .spawn(move || refresh(weak, hot_ref, every))
            .map_err(|source| StoreError::Thread {
                what: "PostgreSQL refresh",
                source,
            })?;
        Ok(PgReader { pool, hot })
    }
}

/// Copy `latest` (every instance's newest readings) into the hot state until the pool is gone.
fn refresh(pool: Weak<Pool>, hot: Arc<Hot>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(pool) = pool.upgrade() else { return };
        match pool.with(read_latest) {
            Ok(latest) => {
                let newest: Vec<i64> = latest.iter().map(|(_, l)| l.reading.ts).collect();
                let fresher: Vec<(String, Latest)> = latest
                    .into_iter()
                    .filter(|(site, l)| {
                        hot.latest(site)
                            .is_none_or(|h| h.reading.ts <= l.reading.ts)
                    })
                    .collect();
                hot.update(fresher);
                if let Some(t) = fleet_median(newest) {
                    hot.advance_fleet_clock(t);
                }
            }
            Err(e) => tracing::debug!(error = %e, "refreshing the newest readings failed"),
        }
    }
}

/// A column holding an enum's name (strum's `FromStr`, the same words as serde's).
fn u32_opt(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

impl StoreReader for PgReader {
    fn hot(&self) -> &Arc<Hot> {
        &self.hot
    }

    fn raw_frames(
        &self,
        q: &crate::store::raw_frames::RawFrameQuery,
    ) -> Result<Vec<crate::store::raw_frames::RawFrameRow>, StoreError> {
        let q = q.clone();
        self.pool.with(move |c| super::raw_frames::query(c, &q))
    }

    fn sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT id, name, street, kind, phase, lat, lon, reference, registered \
                 FROM sites ORDER BY street, id",
                &[],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(SiteRow {
                        info: SiteInfo {
                            id: r.get(0),
                            name: r.get(1),
                            street: r.get(2),
                            kind: parse_enum::<SiteKind>(r.get(3))?,
                            phase: parse_enum::<Phase>(r.get(4))?,
                            lat: r.get(5),
                            lon: r.get(6),
                            reference: r.get(7),
                        },
                        registered: r.get(8),
                    })
                })
                .collect()
        })
    }

    fn devices(&self, site: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        let site = site.map(str::to_string);
        self.pool.with(move |c| {
            let rows = c.query(
                "SELECT site, device, state, fw, boot, interval_s, last_seen_ms FROM devices \
                 WHERE $1::text IS NULL OR site = $1 ORDER BY site, device",
                &[&site],
            )?;
            Ok(rows
                .iter()
                .map(|r| DeviceRow {
                    site: r.get(0),
                    device: r.get(1),
                    state: r.get(2),
                    fw: r.get(3),
                    boot: u32_opt(r.get(4)),
                    interval_s: u32_opt(r.get(5)),
                    last_seen_ms: r.get(6),
                })
                .collect())
        })
    }

    fn latest(&self) -> Result<Vec<(String, Latest)>, StoreError> {
        self.pool.with(read_latest)
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
        let site = site.to_string();
        let points = self.pool.with(move |c| {
            let mut points: BTreeMap<i64, Agg> = BTreeMap::new();
            match source {
                Some((table, _)) => {
                    let [n, s, lo, hi] = rollup_cols(metric);
                    let rows = c.query(
                        &format!(
                            "SELECT bucket, {n}, {s}, {lo}, {hi} FROM {table} \
                             WHERE site = $1 AND bucket >= $2 AND bucket < $3 AND {n} > 0 \
                             ORDER BY bucket"
                        ),
                        &[&site, &from_ms, &to_ms],
                    )?;
                    for r in rows {
                        let b: i64 = r.get(0);
                        let n: f64 = r.get(1);
                        let agg = points.entry(b.div_euclid(step_ms) * step_ms).or_default();
                        agg.n += n as u64;
                        agg.sum += r.get::<_, Option<f64>>(2).unwrap_or(0.0);
                        if let Some(l) = r.get::<_, Option<f64>>(3) {
                            agg.lo = Some(agg.lo.map_or(l, |x| x.min(l)));
                        }
                        if let Some(h) = r.get::<_, Option<f64>>(4) {
                            agg.hi = Some(agg.hi.map_or(h, |x| x.max(h)));
                        }
                    }
                }
                None => {
                    let col = metric.name();
                    let rows = c.query(
                        &format!(
                            "SELECT ts, {col}, flags FROM readings \
                             WHERE site = $1 AND ts > $2 AND ts <= $3 AND {col} IS NOT NULL"
                        ),
                        &[&site, &from_ms, &to_ms],
                    )?;
                    for r in rows {
                        let flags = flags_of(r.get(2))?;
                        if flags.get(metric.name()).is_some_and(|f| !f.is_valid()) {
                            continue;
                        }
                        points
                            .entry(bucket(r.get(0), step_ms))
                            .or_default()
                            .add(r.get(1));
                    }
                }
            }
            Ok(points)
        })?;
        Ok(series_points(points))
    }

    fn readings(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Reading)>, StoreError> {
        let site = site.to_string();
        self.pool.with(move |c| {
            let rows = c.query(
                &reading_rows::readings_between(),
                &[&site, &from_ms, &to_ms],
            )?;
            rows.iter().map(reading_rows::reading_of).collect()
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        self.pool.with(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM events), \
                 (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM sites), \
                 (SELECT count(*) FROM devices)",
                &[],
            )?;
            let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
            Ok(Counts {
                readings: n(0),
                events: n(1),
                dead_letters: n(2),
                sites: n(3),
                devices: n(4),
            })
        })
    }

    fn events(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        let site = site.to_string();
        self.pool.with(move |c| {
            let rows = c.query(reading_rows::EVENTS_BETWEEN, &[&site, &from_ms, &to_ms])?;
            rows.iter().map(reading_rows::event_of).collect()
        })
    }

    fn city_levels(&self) -> Result<Vec<CityLevel>, StoreError> {
        self.pool.with(|c| {
            let rows = c.query("SELECT ts, level FROM city_levels ORDER BY ts", &[])?;
            rows.iter()
                .map(|r| {
                    let level = Level::from_str(r.get(1)).map_err(StoreError::Corrupt)?;
                    Ok(CityLevel {
                        level,
                        ts: r.get(0),
                    })
                })
                .collect()
        })
    }

    fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let filter = filter.clone();
        self.pool.with(move |c| alerts::query_alerts(c, &filter))
    }

    fn alert_history(&self, id: i64) -> Result<Vec<AlertChange>, StoreError> {
        self.pool.with(move |c| alerts::query_history(c, id))
    }

    fn days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<DayRow>, StoreError> {
        self.pool.with(move |c| alerts::query_days(c, from, to))
    }
}
