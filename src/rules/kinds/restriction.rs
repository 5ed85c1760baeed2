//! Work while the city level forbids it: all work from one warning level up, earthwork from
//! another, counted over the activity windows (`rules::activity`). Levels entered after the
//! minutes they cover judge those windows again: `rules::relevel` finds them, the decisions are
//! made here.

use super::{by_count, Decision, MinuteContext};
use crate::rules::activity::{ActivityWindow, WorkMinute};
use crate::rules::alerts::RuleKind;
use crate::rules::profile::{Activity, RestrictionRule};
use crate::rules::relevel::LateBreach;
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::Level;
use serde_json::json;

/// The alert rules this kind raises, in the order they are judged.
pub const WORK: &str = "work-restriction";
pub const EARTHWORK: &str = "earthwork-restriction";

/// Forbidden minutes in the current activity window.
#[derive(Debug, Default)]
pub struct Forbidden {
    pub work: i64,
    pub earthwork: i64,
}

impl Forbidden {
    /// Count the minute when the level in force forbids what the site did.
    pub fn count(&mut self, rule: &RestrictionRule, w: &WorkMinute, level: Level) {
        if w.work && level >= rule.all_work_from {
            self.work += 1;
        }
        if w.earthwork && level >= rule.earthwork_from {
            self.earthwork += 1;
        }
    }
}

/// Judge a closed activity window: work, then earthwork.
pub fn judge_window(
    rule: &RestrictionRule,
    act: &Activity,
    forbidden: &Forbidden,
    window: &ActivityWindow,
    ctx: &MinuteContext<'_>,
) -> [Decision<'static>; 2] {
    let end = ctx.end();
    let start = end - act.window_min * MINUTE;
    let one = |name: &'static str, count: i64, what: &str| {
        by_count(count, act.min_active_minutes, name, end - 1, || {
            Decision::Raise {
                rule: name.into(),
                kind: RuleKind::Restriction,
                severity: rule.severity,
                ts: end - 1,
                level: ctx.level,
                evidence: window.evidence(what, ctx.level, start, end),
            }
        })
    };
    [
        one(WORK, forbidden.work, "work"),
        one(EARTHWORK, forbidden.earthwork, "earthwork"),
    ]
}

/// A window judged again because a level entered late makes it forbidden (`rules::relevel`
/// found the breach); `level` is the highest in force during the window.
pub fn raise_late(rule: &RestrictionRule, b: &LateBreach, level: Level) -> Decision<'static> {
    Decision::Raise {
        rule: b.rule.into(),
        kind: RuleKind::Restriction,
        severity: rule.severity,
        ts: b.window_end - 1,
        level,
        evidence: json!({"activity": if b.rule == WORK {"work"} else {"earthwork"},
            "level": level.name(), "active_minutes": b.active_minutes,
            "window_start": b.window_start, "window_end": b.window_end,
            "judged_again": "the level was entered after the window was judged"}),
    }
}

/// An open alert of `rule` that no window since its raise supports once a lower level was
/// entered late (`level` from `since`, local time): withdrawn at `ts`.
pub fn withdraw_late(rule: &'static str, ts: i64, level: Level, since: &str) -> Decision<'static> {
    Decision::Withdraw {
        rule: rule.into(),
        ts,
        why: format!(
            "the level was corrected after the alert was raised: {} from {since}",
            level.name(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, minute, T0};
    use super::*;
    use crate::rules::activity::infer;
    use crate::rules::Profile;
    use dustwatch_protocol::Metric;

    /// One activity window of minutes with noise `dba` at `level`; the closing minute's
    /// decisions.
    fn window(level: Level, dba: f64) -> [Decision<'static>; 2] {
        let p = Profile::default_profile();
        let rule = p.restriction.expect("the default profile restricts work");
        let act = p.activity;
        let (mut forbidden, mut win) = (Forbidden::default(), ActivityWindow::default());
        let m = minute(&[(Metric::NoiseDba, dba)]);
        // Epoch-aligned: T0 starts a window of any length that divides a day.
        for k in 0..act.window_min - 1 {
            let ctx = context(T0 + k * 60_000, &m, level);
            let w = infer(&act, &ctx, false);
            if w.work {
                win.add(&w, ctx.start, ctx.end());
            }
            forbidden.count(&rule, &w, level);
        }
        let ctx = context(T0 + (act.window_min - 1) * 60_000, &m, level);
        assert!(ctx.closes_window(act.window_min));
        let w = infer(&act, &ctx, false);
        if w.work {
            win.add(&w, ctx.start, ctx.end());
        }
        forbidden.count(&rule, &w, level);
        judge_window(&rule, &act, &forbidden, &win, &ctx)
    }

    #[test]
    fn work_at_a_forbidding_level_raises_and_quiet_clears() {
        let noisy = Profile::default_profile().activity.noise_dba + 10.0;
        let [work, earth] = window(Level::Red, noisy);
        let Decision::Raise { rule, evidence, .. } = work else {
            panic!("work at red must raise, got {work:?}");
        };
        assert_eq!(rule, WORK);
        assert_eq!(evidence["level"], "red");
        // No dust over the background: not earthwork.
        assert!(matches!(earth, Decision::Clear { .. }), "{earth:?}");
        let [work, _] = window(Level::Red, 30.0);
        assert!(matches!(work, Decision::Clear { .. }), "{work:?}");
    }

    #[test]
    fn work_at_a_level_that_allows_it_is_not_an_offence() {
        let noisy = Profile::default_profile().activity.noise_dba + 10.0;
        let [work, _] = window(Level::None, noisy);
        assert!(matches!(work, Decision::Clear { .. }), "{work:?}");
    }
}
