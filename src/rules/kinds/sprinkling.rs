//! Too little sprinkling: on days when the city level reached the rule's level, a construction
//! site must have run its sprinklers (fog cannons, water trucks) at least so many times. Judged
//! when the local day closes, and again when a sprinkling event of that day arrives late; a day
//! with too little data is not judged, and its figures say why. Runs are counted by
//! `rules::sprinkling`.

use super::Decision;
use crate::rules::alerts::RuleKind;
use crate::rules::coverage::Reason;
use crate::rules::profile::SprinklingRule;
use chrono::NaiveDate;
use dustwatch_protocol::Level;
use serde_json::json;

/// The alert rule this kind raises.
pub const RULE: &str = "sprinkling";

/// The day being judged.
#[derive(Debug, Clone, Copy)]
pub struct SprinklingDay {
    pub date: NaiveDate,
    /// Last instant of the day + 1, Unix ms.
    pub end: i64,
    /// The highest city level in force during the day.
    pub level_max: Level,
    pub runs: u32,
    /// Minutes of the day with valid particulate data.
    pub data_minutes: u32,
}

/// What the rule says about a closed day.
#[derive(Debug, PartialEq)]
pub enum DayVerdict {
    /// The level never reached the rule's: nothing to judge.
    NotDue,
    NotJudged(Reason),
    Judged(Decision<'static>),
}

fn needed_minutes(rule: &SprinklingRule) -> u32 {
    (rule.min_data_hours * 60.0).ceil() as u32
}

/// Judge a day at its close.
pub fn judge_day(rule: &SprinklingRule, day: &SprinklingDay) -> DayVerdict {
    if day.level_max < rule.from_level {
        return DayVerdict::NotDue;
    }
    let needed = needed_minutes(rule);
    if day.data_minutes < needed.max(1) {
        // Too little data to say how often the site sprinkled: said, not raised.
        return DayVerdict::NotJudged(Reason::TooLittleData {
            data_minutes: day.data_minutes,
            needed_minutes: needed,
        });
    }
    let ts = day.end - 1;
    DayVerdict::Judged(if day.runs < rule.min_runs {
        Decision::Raise {
            rule: RULE.into(),
            kind: RuleKind::Sprinkling,
            severity: rule.severity,
            ts,
            level: day.level_max,
            evidence: json!({"date": day.date.to_string(), "runs": day.runs,
                             "min_runs": rule.min_runs, "level_max": day.level_max.name()}),
        }
    } else {
        Decision::Clear {
            rule: RULE.into(),
            ts,
        }
    })
}

/// Judge a closed day again after its run count changed; `raised_for_day` when the open
/// sprinkling alert was raised for this very day. Raises what the day now deserves, withdraws
/// what it no longer does.
pub fn judge_day_again(
    rule: &SprinklingRule,
    day: &SprinklingDay,
    raised_for_day: bool,
) -> Option<Decision<'static>> {
    if day.level_max < rule.from_level || day.data_minutes < needed_minutes(rule).max(1) {
        return None;
    }
    let ts = day.end - 1;
    let (date, runs) = (day.date, day.runs);
    if runs < rule.min_runs && !raised_for_day {
        Some(Decision::Raise {
            rule: RULE.into(),
            kind: RuleKind::Sprinkling,
            severity: rule.severity,
            ts,
            level: day.level_max,
            evidence: json!({"date": date.to_string(), "runs": runs,
                             "min_runs": rule.min_runs, "level_max": day.level_max.name(),
                             "judged_again": "a sprinkling event arrived after the day closed"}),
        })
    } else if runs >= rule.min_runs && raised_for_day {
        Some(Decision::Withdraw {
            rule: RULE.into(),
            ts,
            why: format!(
                "a sprinkling event arrived after the day closed: {date} had {runs} runs of {} required",
                rule.min_runs
            ),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Profile;

    fn day(runs: u32, data_minutes: u32, level_max: Level) -> SprinklingDay {
        SprinklingDay {
            date: NaiveDate::from_ymd_opt(2024, 3, 1).expect("a date"),
            end: 1_709_308_800_000,
            level_max,
            runs,
            data_minutes,
        }
    }

    fn rule() -> SprinklingRule {
        Profile::default_profile()
            .sprinkling
            .expect("the default profile has a sprinkling rule")
    }

    #[test]
    fn too_few_runs_on_a_warning_day_raise_enough_clear() {
        let r = rule();
        let level = r.from_level;
        let v = judge_day(&r, &day(r.min_runs - 1, 1440, level));
        let DayVerdict::Judged(Decision::Raise { evidence, ts, .. }) = v else {
            panic!("expected a raise, got {v:?}");
        };
        assert_eq!(evidence["runs"], r.min_runs - 1);
        assert_eq!(ts, 1_709_308_800_000 - 1);
        let v = judge_day(&r, &day(r.min_runs, 1440, level));
        assert!(
            matches!(v, DayVerdict::Judged(Decision::Clear { .. })),
            "{v:?}"
        );
        assert_eq!(
            judge_day(&r, &day(0, 1440, Level::None)),
            DayVerdict::NotDue
        );
    }

    #[test]
    fn a_day_with_too_little_data_is_not_judged_and_says_why() {
        let r = rule();
        let v = judge_day(&r, &day(0, 60, r.from_level));
        assert_eq!(
            v,
            DayVerdict::NotJudged(Reason::TooLittleData {
                data_minutes: 60,
                needed_minutes: (r.min_data_hours * 60.0).ceil() as u32,
            })
        );
    }

    #[test]
    fn a_late_run_withdraws_the_days_alert() {
        let r = rule();
        let d = day(r.min_runs, 1440, r.from_level);
        assert!(matches!(
            judge_day_again(&r, &d, true),
            Some(Decision::Withdraw { .. })
        ));
        assert_eq!(judge_day_again(&r, &d, false), None);
    }
}
