//! Boundary noise (GB 12523-2011): Leq over tumbling windows against the day or the night limit,
//! whichever holds at the window's start. A window with data for fewer than half its minutes is
//! not judged.

use super::{round1, Decision, MinuteContext};
use crate::rules::alerts::RuleKind;
use crate::rules::coverage::Reason;
use crate::rules::profile::NoiseRule;
use crate::rules::time_of_day::TimeOfDay;
use dustwatch_protocol::time::MINUTE;
use serde_json::json;

/// The alert rule this kind raises.
pub const RULE: &str = "noise";

/// Noise energy of the current window at one site.
#[derive(Debug, Default)]
pub struct NoiseAcc {
    energy: f64,
    minutes: i64,
}

/// What a minute did to the noise rule.
#[derive(Debug, PartialEq)]
pub enum NoiseVerdict {
    /// The window is still open.
    Open,
    Judged(Decision<'static>),
    /// The window closed without enough data.
    NotJudged(Reason),
}

/// Add the minute's noise and, when it closes the window, judge the window.
pub fn judge_minute(rule: &NoiseRule, acc: &mut NoiseAcc, ctx: &MinuteContext<'_>) -> NoiseVerdict {
    if let Some(e) = ctx.minute.noise_energy() {
        acc.energy += e;
        acc.minutes += 1;
    }
    if !ctx.closes_window(rule.window_min) {
        return NoiseVerdict::Open;
    }
    let acc = std::mem::take(acc);
    if acc.minutes * 2 < rule.window_min {
        return NoiseVerdict::NotJudged(Reason::TooLittleData {
            data_minutes: acc.minutes as u32,
            needed_minutes: (rule.window_min as u32).div_ceil(2),
        });
    }
    let end = ctx.end();
    let leq = 10.0 * (acc.energy / acc.minutes as f64).log10();
    let start = end - rule.window_min * MINUTE;
    let is_day = rule.daytime.contains(TimeOfDay::of_instant(ctx.tz, start));
    let limit = if is_day {
        rule.day_limit_dba
    } else {
        rule.night_limit_dba
    };
    let ts = end - 1;
    NoiseVerdict::Judged(if leq > limit {
        Decision::Raise {
            rule: RULE.into(),
            kind: RuleKind::Noise,
            severity: rule.severity,
            ts,
            level: ctx.level,
            evidence: json!({"leq_dba": round1(leq), "limit_dba": limit,
                             "period": if is_day {"day"} else {"night"},
                             "window_start": start, "window_end": end}),
        }
    } else if leq < limit - rule.hysteresis_db {
        Decision::Clear {
            rule: RULE.into(),
            ts,
        }
    } else {
        Decision::Hold {
            rule: RULE.into(),
            ts,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, minute, T0};
    use super::*;
    use crate::rules::Profile;
    use dustwatch_protocol::{Level, Metric};

    /// One window of minutes with noise `dba` (None: no data) starting at `from`.
    fn window(rule: &NoiseRule, from: i64, dba: Option<f64>, data_minutes: i64) -> NoiseVerdict {
        let mut acc = NoiseAcc::default();
        let mut last = NoiseVerdict::Open;
        for k in 0..rule.window_min {
            let m = match dba {
                Some(v) if k < data_minutes => minute(&[(Metric::NoiseDba, v)]),
                _ => minute(&[]),
            };
            last = judge_minute(rule, &mut acc, &context(from + k * 60_000, &m, Level::None));
        }
        last
    }

    #[test]
    fn the_same_noise_is_allowed_by_day_and_raised_at_night() {
        let rule = Profile::default_profile().noise.expect("a noise rule");
        let dba = (rule.day_limit_dba + rule.night_limit_dba) / 2.0;
        let n = rule.window_min;
        // T0 is 08:00 local (day); 15:00 UTC is 23:00 local (night).
        let day = window(&rule, T0, Some(dba), n);
        assert!(
            matches!(day, NoiseVerdict::Judged(Decision::Clear { .. })),
            "{day:?}"
        );
        let night = window(&rule, T0 + 15 * 3_600_000, Some(dba), n);
        let NoiseVerdict::Judged(Decision::Raise { evidence, .. }) = night else {
            panic!("expected a raise at night, got {night:?}");
        };
        assert_eq!(evidence["period"], "night");
        assert_eq!(evidence["limit_dba"], rule.night_limit_dba);
    }

    #[test]
    fn a_window_with_data_for_under_half_its_minutes_is_not_judged() {
        let rule = Profile::default_profile().noise.expect("a noise rule");
        let few = rule.window_min / 2 - 1;
        let v = window(&rule, T0, Some(rule.day_limit_dba + 20.0), few);
        assert_eq!(
            v,
            NoiseVerdict::NotJudged(Reason::TooLittleData {
                data_minutes: few as u32,
                needed_minutes: (rule.window_min as u32).div_ceil(2),
            })
        );
    }
}
