//! Chart data from the store: what each chart needs, read through `StoreReader` with steps chosen
//! so the store returns a few points per pixel at most (rollups do the heavy lifting).

use super::aqi_calendar::AqiCalendar;
use super::heatmap::Heatmap;
use super::ranking::Ranking;
use super::site_series::{AlertPeriod, LevelPeriod, LimitLine, SiteSeries};
use crate::aqi::{self, Pollutant};
use crate::store::{StoreError, StoreReader};
use chrono::NaiveDate;
use dustwatch_protocol::time::{HOUR, SECOND};
use dustwatch_protocol::{EventKind, Metric, SiteInfo};
use std::collections::BTreeMap;

/// What a chart shows besides the store's data: the active profile's limits and the alert periods
/// (from the rules), and the local time zone.
#[derive(Debug, Clone)]
pub struct Overlays {
    pub limits: Vec<LimitLine>,
    pub alerts: Vec<AlertPeriod>,
    pub tz: chrono_tz::Tz,
    /// English axis words and legends instead of Chinese.
    pub english: bool,
}

impl Default for Overlays {
    fn default() -> Self {
        Overlays {
            limits: default_limits(),
            alerts: Vec::new(),
            tz: chrono_tz::Asia::Shanghai,
            english: false,
        }
    }
}

/// The time range and pixel size of one chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub from_ms: i64,
    pub to_ms: i64,
    pub size: (u32, u32),
}

/// GB 3095-2012 grade II 24-hour limits, the lines drawn when no rule profile says otherwise.
pub fn default_limits() -> Vec<LimitLine> {
    [
        (Metric::Pm25, 75.0),
        (Metric::Pm10, 150.0),
        (Metric::Tsp, 300.0),
    ]
    .into_iter()
    .map(|(metric, value)| LimitLine {
        metric,
        value,
        label: format!(
            "{} limit {value:.0}",
            super::site_series::metric_label(metric)
        ),
    })
    .collect()
}

/// Limit lines of a rule profile: the raise limit of each absolute window rule (increment rules
/// are judged over the background and have no absolute line), GB 3095 for the other PM metrics.
pub fn profile_limits(profile: &crate::rules::Profile) -> Vec<LimitLine> {
    let mut lines: Vec<LimitLine> = Vec::new();
    for w in &profile.windows {
        if w.mode == crate::rules::profile::Mode::Absolute
            && !lines.iter().any(|l| l.metric == w.metric)
        {
            lines.push(LimitLine {
                metric: w.metric,
                value: w.raise,
                label: format!("{} {:.0}", w.id, w.raise),
            });
        }
    }
    for d in default_limits() {
        if !lines.iter().any(|l| l.metric == d.metric) {
            lines.push(d);
        }
    }
    lines
}

/// The limit of one metric among `limits`, or the GB 3095 default.
pub fn limit_of(limits: &[LimitLine], metric: Metric) -> f64 {
    limits
        .iter()
        .chain(default_limits().iter())
        .find(|l| l.metric == metric)
        .map_or(
            match metric {
                // GB 12523-2011 night limit: the strictest construction noise limit.
                Metric::NoiseDba => 55.0,
                _ => 150.0,
            },
            |l| l.value,
        )
}

/// Store step (seconds, a whole number of minutes or hours) giving at most ~4 points per pixel.
pub fn step_for(from_ms: i64, to_ms: i64, width: u32) -> i64 {
    let raw = ((to_ms - from_ms) / SECOND) / (i64::from(width.max(1)) * 4);
    if raw <= 60 {
        60
    } else if raw < 3600 {
        (raw + 59) / 60 * 60
    } else {
        (raw + 3599) / 3600 * 3600
    }
}

/// A site's PM chart over [from, to).
pub fn site_series(
    reader: &dyn StoreReader,
    site: &SiteInfo,
    frame: Frame,
    overlays: &Overlays,
) -> Result<SiteSeries, StoreError> {
    let Frame {
        from_ms,
        to_ms,
        size,
    } = frame;
    let step = step_for(from_ms, to_ms, size.0);
    let metrics = [Metric::Pm25, Metric::Pm10, Metric::Tsp];
    let mut lines = Vec::new();
    for m in metrics {
        lines.push((m, reader.series(&site.id, m, from_ms, to_ms, step)?));
    }
    let sprinkles = reader
        .events(&site.id, from_ms, to_ms)?
        .into_iter()
        .filter(|(_, e)| e.kind == EventKind::SprinklerOn)
        .map(|(_, e)| e.ts.ms())
        .collect();
    let levels = reader.city_levels()?;
    let mut city = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let end = levels.get(i + 1).map_or(to_ms, |n| n.ts.ms());
        if end > from_ms && l.ts.ms() < to_ms {
            city.push(LevelPeriod {
                from_ms: l.ts.ms(),
                to_ms: end,
                level: l.level,
            });
        }
    }
    Ok(SiteSeries {
        title: format!("{} ({})", site.name, site.id),
        from_ms,
        to_ms,
        step_ms: step * SECOND,
        tz: overlays.tz,
        lines,
        limits: if overlays.english {
            overlays.limits.clone()
        } else {
            overlays
                .limits
                .iter()
                .map(|l| LimitLine {
                    label: format!(
                        "{} 限值 {:.0}",
                        super::site_series::metric_label(l.metric),
                        l.value
                    ),
                    ..l.clone()
                })
                .collect()
        },
        alerts: overlays.alerts.clone(),
        city,
        sprinkles,
        size,
        english: overlays.english,
    })
}

/// Sites × hours of one metric's hourly mean.
pub fn heatmap(
    reader: &dyn StoreReader,
    title: &str,
    sites: &[SiteInfo],
    metric: Metric,
    frame: Frame,
    overlays: &Overlays,
) -> Result<Heatmap, StoreError> {
    let Frame {
        from_ms,
        to_ms,
        size,
    } = frame;
    let from = from_ms.div_euclid(HOUR) * HOUR;
    let hours: Vec<i64> = (from..to_ms).step_by(HOUR as usize).collect();
    let mut values = Vec::with_capacity(sites.len());
    for s in sites {
        let series = reader.series(&s.id, metric, from, to_ms, 3600)?;
        let by_ts: BTreeMap<i64, f64> = series.iter().map(|p| (p.ts, p.mean)).collect();
        values.push(hours.iter().map(|h| by_ts.get(h).copied()).collect());
    }
    Ok(Heatmap {
        title: title.to_string(),
        rows: sites.iter().map(label).collect(),
        hours,
        values,
        limit: limit_of(&overlays.limits, metric),
        unit: format!(
            "{} hourly mean, {}",
            super::site_series::metric_label(metric),
            metric.unit()
        ),
        tz: overlays.tz,
        size,
    })
}

/// How a ranking scores a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// Minutes whose 1-minute mean is above the metric's limit.
    ExceedMinutes,
    /// Mean over the range.
    Mean,
    /// The rankings' one definition (`crate::rankings`): exceedance and restriction minutes per
    /// day of data, over the local days the range touches.
    Verdicts,
}

pub fn ranking(
    reader: &dyn StoreReader,
    title: &str,
    sites: &[SiteInfo],
    metric: Metric,
    by: RankBy,
    frame: Frame,
    overlays: &Overlays,
) -> Result<Ranking, StoreError> {
    let Frame {
        from_ms,
        to_ms,
        size,
    } = frame;
    let limit = limit_of(&overlays.limits, metric);
    let verdicts = match by {
        RankBy::Verdicts => {
            let day = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.with_timezone(&overlays.tz).date_naive())
                    .unwrap_or_default()
            };
            let r = crate::rankings::rankings(reader, day(from_ms), day(to_ms - 1), overlays.tz)?;
            r.sites
                .into_iter()
                .map(|s| (s.id, s.minutes_per_day))
                .collect()
        }
        _ => BTreeMap::new(),
    };
    let mut entries = Vec::with_capacity(sites.len());
    for s in sites {
        let value = match by {
            RankBy::Verdicts => match verdicts.get(&s.id) {
                Some(v) => *v,
                // Reference stations are not ranked.
                None => continue,
            },
            RankBy::ExceedMinutes => reader
                .series(&s.id, metric, from_ms, to_ms, 60)?
                .iter()
                .filter(|p| p.mean > limit)
                .count() as f64,
            RankBy::Mean => {
                let pts = reader.series(&s.id, metric, from_ms, to_ms, 3600)?;
                let n: u64 = pts.iter().map(|p| p.count).sum();
                if n == 0 {
                    continue;
                }
                pts.iter().map(|p| p.mean * p.count as f64).sum::<f64>() / n as f64
            }
        };
        entries.push((label(s), value));
    }
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    let label = super::site_series::metric_label(metric);
    Ok(Ranking {
        title: title.to_string(),
        entries,
        unit: match by {
            RankBy::ExceedMinutes => {
                format!("minutes of {label} above {limit:.0} {}", metric.unit())
            }
            RankBy::Mean => format!("mean {label}, {}", metric.unit()),
            RankBy::Verdicts => "exceedance + restriction minutes per day of data".to_string(),
        },
        size,
    })
}

/// Index of O3 in `Pollutant::ALL`.
const O3: usize = 5;

/// The 8-hour moving means of hourly O3 means `(hour start, mean)`, oldest first, each stamped
/// with the last hour of its window; a window needs 6 of its 8 hours (HJ 633 judges the day by
/// the largest).
fn o3_8h_max(hours: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    for (j, (t, _)) in hours.iter().enumerate() {
        let window: Vec<f64> = hours[..=j]
            .iter()
            .rev()
            .take_while(|(u, _)| *u > t - 8 * HOUR)
            .map(|(_, v)| *v)
            .collect();
        if window.len() >= 6 {
            out.push((*t, window.iter().sum::<f64>() / window.len() as f64));
        }
    }
    out
}

/// Daily AQI per local day over [from, to) for one site or the mean of several: PM2.5, PM10, SO2,
/// NO2 and CO by their 24-hour means, O3 by its largest 8-hour mean.
pub fn aqi_calendar(
    reader: &dyn StoreReader,
    title: &str,
    sites: &[SiteInfo],
    frame: Frame,
    overlays: &Overlays,
) -> Result<AqiCalendar, StoreError> {
    let Frame {
        from_ms,
        to_ms,
        size,
    } = frame;
    let tz = overlays.tz;
    let day_of = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz).date_naive())
    };
    // (date) -> per pollutant (sum, count) of hourly means, summed over sites. O3 counts by its
    // day's largest 8-hour mean, from hourly means averaged over the sites.
    let mut daily: BTreeMap<NaiveDate, [(f64, u64); 6]> = BTreeMap::new();
    let mut o3_hours: BTreeMap<i64, (f64, u64)> = BTreeMap::new();
    for s in sites {
        for (i, pollutant) in Pollutant::ALL.into_iter().enumerate() {
            for p in reader.series(&s.id, pollutant.metric(), from_ms, to_ms, 3600)? {
                if pollutant == Pollutant::O3 {
                    let e = o3_hours.entry(p.ts).or_default();
                    e.0 += p.mean;
                    e.1 += 1;
                } else if let Some(d) = day_of(p.ts) {
                    let e = &mut daily.entry(d).or_default()[i];
                    e.0 += p.mean * p.count as f64;
                    e.1 += p.count;
                }
            }
        }
    }
    let hours: Vec<(i64, f64)> = o3_hours
        .into_iter()
        .map(|(t, (s, n))| (t, s / n as f64))
        .collect();
    for (t, max) in o3_8h_max(&hours) {
        if let Some(d) = day_of(t) {
            let e = &mut daily.entry(d).or_default()[O3];
            if e.1 == 0 || max > e.0 {
                *e = (max, 1);
            }
        }
    }
    let mut days = Vec::new();
    if let (Some(mut d), Some(last)) = (day_of(from_ms), day_of(to_ms - 1)) {
        while d <= last && days.len() < 400 {
            let v = daily.get(&d).and_then(|day| {
                let mean = |p: Pollutant| {
                    let i = Pollutant::ALL.iter().position(|x| *x == p)?;
                    let (s, n) = day[i];
                    (n > 0).then(|| s / n as f64)
                };
                aqi::compute(mean, aqi::Period::Day).map(|a| a.value)
            });
            days.push((d, v));
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
    }
    Ok(AqiCalendar {
        title: title.to_string(),
        days,
        size,
        english: overlays.english,
    })
}

/// A site's label in charts: its name as registered (the id when it has none).
fn label(s: &SiteInfo) -> String {
    if s.name.trim().is_empty() {
        s.id.clone()
    } else {
        s.name.clone()
    }
}

#[cfg(test)]
mod profile_limit_tests {
    use super::*;

    #[test]
    fn o3_counts_by_8_hour_means_of_6_hours_or_more() {
        let h = |i: i64, v: f64| (i * HOUR, v);
        let hours: Vec<(i64, f64)> = (0..10).map(|i| h(i, 100.0 + i as f64 * 10.0)).collect();
        let means = o3_8h_max(&hours);
        assert_eq!(means.first().map(|m| m.0), Some(5 * HOUR), "6 hours first");
        // Hours 2..=9: 120..190, mean 155.
        assert_eq!(means.last(), Some(&(9 * HOUR, 155.0)));
        // A gap: hours 0-3 and 8-9 give windows of at most 4 and 2 hours.
        let gappy = [
            h(0, 1.0),
            h(1, 1.0),
            h(2, 1.0),
            h(3, 1.0),
            h(8, 1.0),
            h(9, 1.0),
        ];
        assert!(o3_8h_max(&gappy).is_empty());
        assert_eq!(Pollutant::ALL[O3], Pollutant::O3);
    }

    #[test]
    fn chart_limits_follow_the_active_profile() {
        let lines = profile_limits(&crate::rules::Profile::default_profile());
        let value = |m: Metric| lines.iter().find(|l| l.metric == m).map(|l| l.value);
        // The default profile judges TSP absolutely (15-min mean above 1,000 µg/m³) ...
        assert_eq!(value(Metric::Tsp), Some(1000.0));
        // ... and PM10 as an increment over the reference, which has no absolute line: GB 3095.
        assert_eq!(value(Metric::Pm10), Some(150.0));
        assert_eq!(value(Metric::Pm25), Some(75.0));
    }
}
