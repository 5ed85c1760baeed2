//! Data gaps: a device silent for `after_s` while the fleet's event time moves on, or a device
//! that reports but not one of the watched metrics. A gap opens at the engine's sweep and
//! closes (at once, no re-inspection) when data is back.

use super::Decision;
use crate::rules::alerts::RuleKind;
use crate::rules::profile::GapRule;
use dustwatch_protocol::time::SECOND;
use dustwatch_protocol::{Level, Metric};
use serde_json::json;
use std::collections::HashMap;

/// When a device was last heard from.
#[derive(Debug, Default)]
pub struct DeviceClock {
    pub first_ts: i64,
    pub last_ts: i64,
    /// The fleet clock when this device was last heard from: a device that keeps sending, even
    /// behind the others (a backfill, an accelerated replay), is not silent.
    pub fleet_at_arrival: i64,
    pub last_metric_ts: HashMap<Metric, i64>,
}

/// The device's open gaps, so the hot path only asks the alert book when needed.
#[derive(Debug, Default)]
pub struct OpenGaps {
    pub device: bool,
    pub metrics: Vec<Metric>,
}

/// A gap that opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// The metric missing; `None` when the whole device is silent.
    pub metric: Option<Metric>,
    pub rule: String,
    pub evidence: serde_json::Value,
}

pub fn device_rule(device: &str) -> String {
    format!("gap-{device}")
}

pub fn metric_rule(device: &str, metric: Metric) -> String {
    format!("gap-{device}-{}", metric.name())
}

/// Data arrived (live or backfilled) at `ts`: the gaps it ends.
pub fn on_arrival(
    rule: &GapRule,
    clock: &DeviceClock,
    open: &mut OpenGaps,
    device: &str,
    ts: i64,
) -> Vec<Decision<'static>> {
    let after = rule.after_s * SECOND;
    let mut out = Vec::new();
    if std::mem::take(&mut open.device) {
        out.push(Decision::Resolve {
            rule: device_rule(device).into(),
            ts,
        });
    }
    let (back, still): (Vec<Metric>, Vec<Metric>) = open.metrics.drain(..).partition(|m| {
        clock
            .last_metric_ts
            .get(m)
            .is_some_and(|t| clock.last_ts - t <= after)
    });
    open.metrics = still;
    for metric in back {
        out.push(Decision::Resolve {
            rule: metric_rule(device, metric).into(),
            ts,
        });
    }
    out
}

/// The gaps of a device that open at `now` (the slow end of the fleet's clock).
pub fn openings(
    rule: &GapRule,
    clock: &DeviceClock,
    open: &OpenGaps,
    device: &str,
    now: i64,
) -> Vec<Opening> {
    let after = rule.after_s * SECOND;
    let d = clock;
    if now - d.last_ts > after && now - d.fleet_at_arrival > after {
        if open.device {
            return Vec::new();
        }
        return vec![Opening {
            metric: None,
            rule: device_rule(device),
            evidence: json!({"device": device, "last_ts": d.last_ts, "silent_s": (now - d.last_ts) / SECOND}),
        }];
    }
    if now - d.last_ts > after {
        return Vec::new();
    }
    let mut out = Vec::new();
    for metric in &rule.metrics {
        // The device reports, but not this metric (judged on the device's own clock; never
        // seen: counted from its first reading).
        let last = d.last_metric_ts.get(metric).copied();
        if d.last_ts - last.unwrap_or(d.first_ts) > after && !open.metrics.contains(metric) {
            out.push(Opening {
                metric: Some(*metric),
                rule: metric_rule(device, *metric),
                evidence: json!({"device": device, "metric": metric.name(), "last_ts": last}),
            });
        }
    }
    out
}

/// Mark the gap open and raise it.
pub fn open(
    rule: &GapRule,
    o: Opening,
    gaps: &mut OpenGaps,
    now: i64,
    level: Level,
) -> Decision<'static> {
    match o.metric {
        None => gaps.device = true,
        Some(m) => gaps.metrics.push(m),
    }
    Decision::Raise {
        rule: o.rule.into(),
        kind: RuleKind::Gap,
        severity: rule.severity,
        ts: now,
        level,
        evidence: o.evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Profile;

    fn rule() -> GapRule {
        Profile::default_profile()
            .gap
            .expect("the default profile watches gaps")
    }

    fn clock(last_ts: i64, metrics: &[(Metric, i64)]) -> DeviceClock {
        DeviceClock {
            first_ts: 0,
            last_ts,
            fleet_at_arrival: last_ts,
            last_metric_ts: metrics.iter().copied().collect(),
        }
    }

    #[test]
    fn a_silent_device_opens_a_gap_and_its_next_reading_closes_it() {
        let r = rule();
        let after = r.after_s * 1000;
        let c = clock(1_000_000, &[]);
        let mut open = OpenGaps::default();
        let found = openings(&r, &c, &open, "d1", 1_000_000 + after + 1);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].metric, found[0].rule.as_str()), (None, "gap-d1"));
        let d = super::open(
            &r,
            found[0].clone(),
            &mut open,
            1_000_000 + after + 1,
            Level::None,
        );
        assert!(matches!(
            d,
            Decision::Raise {
                kind: RuleKind::Gap,
                ..
            }
        ));
        // Open already: not raised twice.
        assert!(openings(&r, &c, &open, "d1", 1_000_000 + 2 * after).is_empty());
        let back = on_arrival(&r, &c, &mut open, "d1", 1_000_000 + 2 * after);
        assert_eq!(
            back,
            vec![Decision::Resolve {
                rule: "gap-d1".into(),
                ts: 1_000_000 + 2 * after
            }]
        );
    }

    #[test]
    fn a_device_heard_within_the_limit_has_no_gap() {
        let r = rule();
        let mut metrics: Vec<(Metric, i64)> = r.metrics.iter().map(|m| (*m, 1_000_000)).collect();
        metrics.push((Metric::NoiseDba, 1_000_000));
        let c = clock(1_000_000, &metrics);
        let found = openings(
            &r,
            &c,
            &OpenGaps::default(),
            "d1",
            1_000_000 + r.after_s * 1000,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_device_reporting_without_a_watched_metric_has_a_metric_gap() {
        let r = rule();
        let watched = *r
            .metrics
            .first()
            .expect("the default profile watches metrics");
        let after = r.after_s * 1000;
        // Reports every other watched metric up to now, this one never.
        let metrics: Vec<(Metric, i64)> = r
            .metrics
            .iter()
            .filter(|m| **m != watched)
            .map(|m| (*m, after + 1))
            .collect();
        let c = clock(after + 1, &metrics);
        let found = openings(&r, &c, &OpenGaps::default(), "d1", after + 1);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metric, Some(watched));
        assert_eq!(found[0].rule, metric_rule("d1", watched));
    }
}
