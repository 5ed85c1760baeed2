//! Work in the night-patrol hours: a night whose activity window holds enough working minutes
//! is flagged for the patrol.

use super::{by_count, Decision, MinuteContext};
use crate::rules::activity::ActivityWindow;
use crate::rules::alerts::RuleKind;
use crate::rules::profile::{Activity, NightRule};
use crate::rules::time_of_day::TimeOfDay;
use dustwatch_protocol::time::MINUTE;

/// The alert rule this kind raises.
pub const RULE: &str = "night-activity";

/// True when the minute starts within the rule's night hours.
pub fn in_hours(rule: &NightRule, ctx: &MinuteContext<'_>) -> bool {
    rule.hours
        .contains(TimeOfDay::of_instant(ctx.tz, ctx.start))
}

/// Judge a closed activity window holding `night_active` working minutes in the night hours.
pub fn judge_window(
    rule: &NightRule,
    act: &Activity,
    night_active: i64,
    window: &ActivityWindow,
    ctx: &MinuteContext<'_>,
) -> Decision<'static> {
    let end = ctx.end();
    by_count(night_active, act.min_active_minutes, RULE, end - 1, || {
        Decision::Raise {
            rule: RULE.into(),
            kind: RuleKind::Night,
            severity: rule.severity,
            ts: end - 1,
            level: ctx.level,
            evidence: window.evidence("night work", ctx.level, end - act.window_min * MINUTE, end),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, minute, T0};
    use super::*;
    use crate::rules::Profile;
    use dustwatch_protocol::Level;

    #[test]
    fn night_hours_are_local() {
        let rule = Profile::default_profile().night.expect("a night rule");
        let m = minute(&[]);
        // T0 is 08:00 in Shanghai; 15:00 UTC is 23:00 there.
        assert!(!in_hours(&rule, &context(T0, &m, Level::None)));
        assert!(in_hours(
            &rule,
            &context(T0 + 15 * 3_600_000, &m, Level::None)
        ));
    }

    #[test]
    fn enough_night_work_raises_some_holds_none_clears() {
        let p = Profile::default_profile();
        let (rule, act) = (p.night.expect("a night rule"), p.activity);
        let m = minute(&[]);
        let ctx = context(T0 + (act.window_min - 1) * 60_000, &m, Level::None);
        let window = ActivityWindow::default();
        let d = judge_window(&rule, &act, act.min_active_minutes, &window, &ctx);
        assert!(
            matches!(&d, Decision::Raise { rule, .. } if rule == RULE),
            "{d:?}"
        );
        let d = judge_window(&rule, &act, 1, &window, &ctx);
        assert!(
            matches!(d, Decision::Hold { .. }) || act.min_active_minutes <= 1,
            "{d:?}"
        );
        let d = judge_window(&rule, &act, 0, &window, &ctx);
        assert!(matches!(d, Decision::Clear { .. }), "{d:?}");
    }
}
