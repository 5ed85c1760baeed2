//! Device faults, judged on each reading as it arrives: a particulate value stuck for so many
//! readings in a row, or so many readings in a row whose particulate values carry a data flag
//! other than `N`. An alert is raised when a fault starts and cleared when it ends; readings in
//! between decide nothing (the hot path allocates nothing for them).

use super::Decision;
use crate::rules::alerts::RuleKind;
use crate::rules::profile::FaultRule;
use crate::rules::timeline::LevelTimeline;
use dustwatch_protocol::{Flag, Metric, Reading};
use serde_json::json;
use std::collections::HashMap;

const PM: [Metric; 3] = [Metric::Pm25, Metric::Pm10, Metric::Tsp];

/// One device's fault state.
#[derive(Debug, Default)]
pub struct FaultTrack {
    stuck_open: bool,
    flag_open: bool,
    /// Per PM metric: last value and how many readings in a row carried it.
    stuck: HashMap<Metric, (f64, u32)>,
    flagged_run: u32,
}

pub fn stuck_rule(device: &str) -> String {
    format!("stuck-{device}")
}

pub fn flag_rule(device: &str) -> String {
    format!("flag-{device}")
}

/// Judge one reading of `device`.
pub fn on_reading(
    rule: &FaultRule,
    t: &mut FaultTrack,
    device: &str,
    r: &Reading,
    levels: &LevelTimeline,
) -> Vec<Decision<'static>> {
    let mut out = Vec::new();
    let mut stuck_on: Option<(Metric, f64, u32)> = None;
    for metric in PM {
        // A value at the range cap is flagged (T), not stuck: the flag rule reports it.
        if let Some(v) = r.valid(metric) {
            let e = t.stuck.entry(metric).or_insert((v, 0));
            if e.0 == v {
                e.1 += 1;
            } else {
                *e = (v, 1);
            }
            if e.1 >= rule.stuck_readings {
                stuck_on = Some((metric, v, e.1));
            }
        }
    }
    let pm_flagged = PM
        .into_iter()
        .any(|m| r.get(m).is_some() && r.flag(m) != Flag::N);
    t.flagged_run = if pm_flagged { t.flagged_run + 1 } else { 0 };
    let flagged_run = t.flagged_run;
    let stuck_was_open = std::mem::replace(&mut t.stuck_open, stuck_on.is_some());
    let flag_now_open = if flagged_run >= rule.flagged_readings {
        true
    } else if flagged_run == 0 {
        false
    } else {
        t.flag_open
    };
    let flag_was_open = std::mem::replace(&mut t.flag_open, flag_now_open);
    match stuck_on {
        Some((metric, v, n)) if !stuck_was_open => out.push(Decision::Raise {
            rule: stuck_rule(device).into(),
            kind: RuleKind::Fault,
            severity: rule.severity,
            ts: r.ts.ms(),
            level: levels.at(r.ts.ms()),
            evidence: json!({"fault": "stuck", "device": device,
                "metric": metric.name(), "value": v, "readings": n}),
        }),
        None if stuck_was_open => out.push(Decision::Clear {
            rule: stuck_rule(device).into(),
            ts: r.ts.ms(),
        }),
        _ => {}
    }
    if flag_now_open && !flag_was_open {
        let flags: Vec<(&str, String)> = PM
            .into_iter()
            .filter(|m| r.get(*m).is_some() && r.flag(*m) != Flag::N)
            .map(|m| (m.name(), r.flag(m).letter().to_string()))
            .collect();
        out.push(Decision::Raise {
            rule: flag_rule(device).into(),
            kind: RuleKind::Fault,
            severity: rule.severity,
            ts: r.ts.ms(),
            level: levels.at(r.ts.ms()),
            evidence: json!({"fault": "flag", "device": device, "flags": flags,
                "readings": flagged_run}),
        });
    } else if !flag_now_open && flag_was_open {
        out.push(Decision::Clear {
            rule: flag_rule(device).into(),
            ts: r.ts.ms(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Profile;

    fn rule() -> FaultRule {
        Profile::default_profile()
            .fault
            .expect("the default profile watches faults")
    }

    fn reading(ts: i64, pm10: f64, flag: Option<Flag>) -> Reading {
        let mut r = Reading {
            ts: dustwatch_protocol::EventTime(ts),
            pm10: Some(pm10),
            ..Default::default()
        };
        if let Some(f) = flag {
            r.flags.insert(Metric::Pm10.name().to_string(), f);
        }
        r
    }

    #[test]
    fn a_stuck_value_raises_once_and_a_change_clears() {
        let (r, levels) = (rule(), LevelTimeline::default());
        let mut t = FaultTrack::default();
        let mut decided = Vec::new();
        for k in 0..r.stuck_readings + 3 {
            decided.extend(on_reading(
                &r,
                &mut t,
                "d1",
                &reading(i64::from(k), 42.0, None),
                &levels,
            ));
        }
        assert_eq!(decided.len(), 1, "{decided:?}");
        assert!(matches!(&decided[0], Decision::Raise { rule, .. } if rule == "stuck-d1"));
        let cleared = on_reading(&r, &mut t, "d1", &reading(100, 43.0, None), &levels);
        assert!(matches!(&cleared[..], [Decision::Clear { rule, .. }] if rule == "stuck-d1"));
    }

    #[test]
    fn changing_values_decide_nothing() {
        let (r, levels) = (rule(), LevelTimeline::default());
        let mut t = FaultTrack::default();
        for k in 0..r.stuck_readings * 2 {
            let d = on_reading(
                &r,
                &mut t,
                "d1",
                &reading(i64::from(k), f64::from(k), None),
                &levels,
            );
            assert!(d.is_empty(), "{d:?}");
        }
    }

    #[test]
    fn flagged_readings_cannot_be_judged_as_stuck_and_raise_a_flag_fault() {
        let (r, levels) = (rule(), LevelTimeline::default());
        let mut t = FaultTrack::default();
        let mut decided = Vec::new();
        for k in 0..r.flagged_readings.max(r.stuck_readings) + 1 {
            decided.extend(on_reading(
                &r,
                &mut t,
                "d1",
                &reading(i64::from(k), 42.0, Some(Flag::D)),
                &levels,
            ));
        }
        // The same flagged value is not a stuck sensor: flagged values are not valid data.
        assert_eq!(decided.len(), 1, "{decided:?}");
        let Decision::Raise { rule, evidence, .. } = &decided[0] else {
            panic!("expected a raise: {decided:?}");
        };
        assert_eq!(rule, "flag-d1");
        assert_eq!(evidence["flags"][0][1], "D");
    }
}
