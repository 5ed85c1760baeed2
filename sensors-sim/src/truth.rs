//! Ground truth: every violation and fault a run injected, with the exact simulated window, so an
//! aggregator's alerts can be scored against it. Kinds are documented in the crate README.

mod replay;

pub use replay::PerfectSeries;

use crate::faults::{FaultKind, SPIKE_MS};
use crate::physics::is_day;
use crate::scenario::Plan;
use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, SecondsFormat, TimeZone, Utc};
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{Phase, SiteKind};
use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

/// One injected behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthRecord {
    pub site: String,
    /// The device for device faults; `null` for site behaviour (work, sprinkling, cover).
    pub device: Option<String>,
    pub kind: String,
    /// Window start, RFC 3339 UTC (inclusive).
    pub start: String,
    /// Window end, RFC 3339 UTC (exclusive); equal to `start` for instants (`reboot`).
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `flagged_readings`: how many readings in a row carried the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readings: Option<u32>,
}

/// The truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub scenario: String,
    pub seed: u64,
    pub timezone: String,
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub records: Vec<TruthRecord>,
    /// Per site, what perfect PM sensors would have measured each minute: the window rules'
    /// truth is what each rule decides on these (the scorer applies the rule profile).
    #[serde(default)]
    pub perfect: Vec<PerfectSeries>,
}

#[derive(Debug, Error)]
pub enum TruthError {
    #[error("cannot write the truth file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn record(site: &str, device: Option<&str>, kind: &str, start: i64, end: i64) -> TruthRecord {
    TruthRecord {
        site: site.to_string(),
        device: device.map(str::to_string),
        kind: kind.to_string(),
        start: rfc3339(start),
        end: rfc3339(end),
        start_ms: start,
        end_ms: end,
        readings: None,
    }
}

/// Windows where `pred` holds, scanning whole minutes of `[start, end)`. Schedules, levels and
/// work hours change on whole minutes, so the windows are exact.
fn windows(start: i64, end: i64, mut pred: impl FnMut(i64) -> bool) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut open: Option<i64> = None;
    let mut t = start;
    while t < end {
        match (pred(t), open) {
            (true, None) => open = Some(t),
            (false, Some(s)) => {
                out.push((s, t));
                open = None;
            }
            _ => {}
        }
        t += MINUTE;
    }
    if let Some(s) = open {
        out.push((s, end));
    }
    out
}

/// Everything the plan injects in `[plan.start_ms, end_ms)`.
pub fn compute(plan: &Plan, end_ms: i64) -> Truth {
    // The simulated span: a resumed run has no truth before it resumed.
    let start = plan.begin_ms;
    let mut records = Vec::new();
    for site in &plan.sites {
        let id = site.info.id.as_str();
        if site.info.kind == SiteKind::Construction {
            let hour_at = |t: i64| f64::from(Plan::second_of_day(t, plan.utc_offset_s(t))) / 3600.0;
            let working = |t: i64| {
                let sod = Plan::second_of_day(t, plan.utc_offset_s(t));
                site.working(&plan.rules, plan.level_at(t), sod)
            };
            for (s, e) in windows(start, end_ms, |t| {
                working(t) && plan.level_at(t) >= plan.rules.stop_all_at
            }) {
                records.push(record(id, None, "work_during_restriction", s, e));
            }
            if site.info.phase == Phase::Earthwork {
                for (s, e) in windows(start, end_ms, |t| {
                    working(t) && plan.level_at(t) >= plan.rules.stop_earthwork_at
                }) {
                    records.push(record(id, None, "earthwork_during_restriction", s, e));
                }
            }
            for (s, e) in windows(start, end_ms, |t| working(t) && !is_day(hour_at(t))) {
                records.push(record(id, None, "night_work", s, e));
                // Working machines are 62-76 dB(A), above the 55 dB(A) night limit (GB 12523).
                records.push(record(id, None, "noise_night", s, e));
            }
            if !site.covered {
                records.push(record(id, None, "uncovered_soil", start, end_ms));
            }
            if (site.sprinkle.len() as u32) < plan.rules.min_sprinkling_runs {
                for (s, e) in local_days(plan, start, end_ms) {
                    records.push(record(id, None, "too_few_sprinkling_runs", s, e));
                }
            }
        }
    }
    for dev in &plan.devices {
        let (site, d) = (dev.site.info.id.as_str(), Some(dev.id.as_str()));
        for f in &dev.faults {
            if f.start >= end_ms {
                continue;
            }
            let (s, e) = (f.start.max(start), f.end.min(end_ms));
            let mut add = |kind: &str, s: i64, e: i64| records.push(record(site, d, kind, s, e));
            match f.kind {
                FaultKind::Offline => add("offline", s, e),
                FaultKind::OutOfOrderBackfill => {
                    add("offline", s, e);
                    add("out_of_order_backfill", s, e);
                }
                FaultKind::PowerLoss => {
                    add("data_gap", s, e);
                    if f.end < end_ms {
                        add("reboot", f.end, f.end);
                    }
                }
                FaultKind::Stuck => add("sensor_stuck", s, e),
                FaultKind::Drift => add("sensor_drift", s, e),
                FaultKind::Spikes => {
                    for (a, b) in f.spikes().filter(|(a, _)| *a < end_ms) {
                        add("spike", a, b.min(end_ms).min(a + SPIKE_MS));
                    }
                }
                FaultKind::Negative | FaultKind::Nan => add("invalid_value", s, e),
                FaultKind::Malformed => add("malformed_payload", s, e),
                FaultKind::Duplicate => add("duplicate_publish", s, e),
                FaultKind::ClockSkew => add("clock_skew", s, e),
            }
        }
    }
    let (perfect, flag_runs) = replay::replay(plan, end_ms);
    for f in flag_runs {
        let mut r = record(&f.site, Some(&f.device), "flagged_readings", f.start, f.end);
        r.readings = Some(f.readings);
        records.push(r);
    }
    records.sort_by(|a, b| (a.start_ms, &a.site, &a.kind).cmp(&(b.start_ms, &b.site, &b.kind)));
    Truth {
        scenario: plan.name.clone(),
        seed: plan.seed,
        timezone: plan.tz.name().to_string(),
        start: rfc3339(start),
        end: rfc3339(end_ms),
        start_ms: start,
        end_ms,
        records,
        perfect,
    }
}

/// Local days lying wholly inside `[start, end)` (a day is judged once it closes).
fn local_days(plan: &Plan, start: i64, end: i64) -> Vec<(i64, i64)> {
    let tz = plan.tz;
    let Some(first) = tz.timestamp_millis_opt(start).single() else {
        return Vec::new();
    };
    let mut day = first.date_naive();
    let mut out = Vec::new();
    loop {
        let midnight = |d: chrono::NaiveDate| {
            tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .map(|t: DateTime<_>| t.timestamp_millis())
        };
        let (Some(s), Some(e)) = (midnight(day), midnight(day + ChronoDuration::days(1))) else {
            break;
        };
        if s >= end {
            break;
        }
        if s >= start && e <= end {
            out.push((s, e));
        }
        day += ChronoDuration::days(1);
    }
    out
}

impl Truth {
    pub fn write(&self, path: &Path) -> Result<(), TruthError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(path, text).map_err(|source| TruthError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Scenario};
    use dustwatch_protocol::time::HOUR;

    const START: i64 = 1_483_286_400_000; // 2017-01-02T00:00:00+08:00
    const H: i64 = HOUR;

    fn huiji() -> Truth {
        let plan = Scenario::load("huiji-red-alert")
            .expect("loads")
            .plan(&Overrides::default())
            .expect("plans");
        compute(&plan, plan.end_ms.expect("72 h"))
    }

    fn windows_of(t: &Truth, site: &str, kind: &str) -> Vec<(i64, i64)> {
        t.records
            .iter()
            .filter(|r| r.site == site && r.kind == kind)
            .map(|r| ((r.start_ms - START) / MINUTE, (r.end_ms - START) / MINUTE))
            .collect()
    }

    #[test]
    fn huiji_truth_lists_exactly_the_violators() {
        let t = huiji();
        // Red from +44 h; night work 23:00-04:00; the span ends at +72 h (00:00 on the 5th).
        let night = vec![(47 * 60, 52 * 60), (71 * 60, 72 * 60)];
        for site in ["hj-lz-02", "hj-xc-03"] {
            assert_eq!(windows_of(&t, site, "night_work"), night, "{site}");
            assert_eq!(
                windows_of(&t, site, "work_during_restriction"),
                night,
                "{site}"
            );
            assert_eq!(windows_of(&t, site, "noise_night"), night, "{site}");
        }
        // Earthwork through yellow (from 08:00 on day 1) and orange (day 2), stopping at red.
        let earth = vec![
            (8 * 60, 12 * 60),
            (13 * 60, 18 * 60),
            (31 * 60, 36 * 60),
            (37 * 60, 42 * 60),
        ];
        for site in ["hj-cx-01", "hj-gx-02"] {
            assert_eq!(
                windows_of(&t, site, "earthwork_during_restriction"),
                earth,
                "{site}"
            );
        }
        for site in ["hj-dh-02", "hj-hyk-03"] {
            let days = windows_of(&t, site, "too_few_sprinkling_runs");
            assert_eq!(
                days,
                vec![(0, 24 * 60), (24 * 60, 48 * 60), (48 * 60, 72 * 60)],
                "{site}"
            );
        }
        assert_eq!(
            windows_of(&t, "hj-yb-03", "data_gap"),
            vec![(43 * 60, 53 * 60)]
        );
        assert_eq!(
            windows_of(&t, "hj-lyc-02", "sensor_stuck"),
            vec![(34 * 60, 58 * 60)]
        );
        for site in ["hj-yb-04", "hj-lyc-04"] {
            assert_eq!(
                windows_of(&t, site, "uncovered_soil"),
                vec![(0, 72 * 60)],
                "{site}"
            );
        }
        let violators: std::collections::BTreeSet<&str> = t
            .records
            .iter()
            .filter(|r| r.kind != "flagged_readings")
            .map(|r| r.site.as_str())
            .collect();
        assert_eq!(violators.len(), 10, "{violators:?}");
        assert_eq!(t.start_ms, START);
        assert_eq!(t.end_ms, START + 72 * H);
        assert!(t.records.iter().all(|r| r.start.ends_with('Z')));

        // The window rules' truth: every site's true air, minute by minute, except where the
        // monitor was off (power cut 43-53 h) or its values were not the air (stuck 34-58 h).
        // (PM2.5 never reaches the range cap here; PM10 does in truck plumes, and a flagged
        // minute is not counted either.)
        assert_eq!(t.perfect.len(), 43);
        let unknown = |site: &str| -> Vec<(i64, i64)> {
            let s = t.perfect.iter().find(|p| p.site == site).expect("listed");
            assert_eq!(s.pm25.len(), 72 * 60, "{site}");
            let mut out: Vec<(i64, i64)> = Vec::new();
            for (i, v) in s.pm25.iter().enumerate() {
                let i = i as i64;
                match (v, out.last_mut()) {
                    (None, Some(last)) if last.1 == i => last.1 = i + 1,
                    (None, _) => out.push((i, i + 1)),
                    _ => {}
                }
            }
            out
        };
        assert_eq!(unknown("hj-yb-03"), vec![(43 * 60, 53 * 60)]);
        assert_eq!(unknown("hj-lyc-02"), vec![(34 * 60, 58 * 60)]);
        assert_eq!(unknown("hj-yb-01"), vec![]);
        let yb03 = t
            .perfect
            .iter()
            .find(|p| p.site == "hj-yb-03")
            .expect("listed");
        let flagged = t
            .records
            .iter()
            .find(|r| r.site == "hj-yb-03" && r.kind == "flagged_readings")
            .expect("a truck plume over the PM10 range");
        let i = ((flagged.end_ms - START) / MINUTE - 1) as usize;
        assert_eq!(yb03.pm10[i], None, "a flagged PM10 minute is not counted");
        assert!(yb03.pm25[i].is_some());
    }
}
