//! Particulate over a window: each window rule's mean of one metric (PM10, TSP, ...) over
//! tumbling, epoch-aligned windows, absolute or as an increment over the reference station,
//! against its raise and clear limits (the arithmetic is `rules::window`). A window without
//! enough data is not judged, and the day's figures say why.

use super::{round1, Decision, MinuteContext};
use crate::rules::alerts::RuleKind;
use crate::rules::coverage;
use crate::rules::engine::DayStats;
use crate::rules::profile::WindowRule;
use crate::rules::window::{Verdict, WindowState};
use dustwatch_protocol::time::MINUTE;
use serde_json::json;
use std::collections::BTreeSet;

/// Add the minute to `rule`'s window at this site and, when the minute closes the window, judge
/// it. Exceeding windows mark their minutes in `exceeded` (the day's exceedance minutes);
/// windows that cannot be judged are counted in `day`, with the reason.
pub fn judge_minute<'a>(
    rule: &'a WindowRule,
    state: &mut WindowState,
    ctx: &MinuteContext<'_>,
    day: Option<&mut DayStats>,
    exceeded: &mut BTreeSet<i64>,
) -> Option<Decision<'a>> {
    state.acc.add(rule, Some(ctx.minute), ctx.reference);
    if !ctx.closes_window(rule.window_min) {
        return None;
    }
    let end = ctx.end();
    let window_start = end - rule.window_min * MINUTE;
    // Windows are aligned to the epoch, not to local midnight: the allowance is kept per local
    // day of the window's last instant.
    let date = ctx.local_date(end - 1);
    match state.judge(rule, ctx.phase, date, ctx.reference_id) {
        Verdict::Unjudged(reason) => {
            // Said, per site and window: silence must not read as compliance.
            if let Some(day) = day {
                day.not_judged_minutes += rule.window_min as u32;
                coverage::add(
                    &mut day.not_judged,
                    &rule.id,
                    rule.window_min as u32,
                    reason,
                );
            }
            None
        }
        Verdict::Judged {
            value,
            site_mean,
            ref_mean,
            limit,
            clear,
            fallback,
            exceeded: over,
            alert,
            cleared,
        } => {
            if over {
                for k in 0..rule.window_min {
                    exceeded.insert(window_start + k * MINUTE);
                }
            }
            let rule_id = rule.id.as_str().into();
            if alert {
                Some(Decision::Raise {
                    rule: rule_id,
                    kind: RuleKind::Window,
                    severity: rule.severity,
                    ts: end - 1,
                    level: ctx.level,
                    evidence: json!({
                        "metric": rule.metric.name(), "window_min": rule.window_min,
                        "window_start": window_start, "window_end": end,
                        "value": round1(value), "site_mean": round1(site_mean),
                        "reference_mean": ref_mean.map(round1), "limit": limit,
                        "exceedances_today": state.today, "daily_budget": rule.daily_budget,
                        "fallback": fallback.as_ref().map(|r| format!("absolute limit, because {r}")),
                    }),
                })
            } else if cleared {
                Some(Decision::Clear {
                    rule: rule_id,
                    ts: end - 1,
                })
            } else if value >= clear {
                // Not clean (in the hysteresis band, or over the limit within the allowance): a
                // re-inspection running now starts again.
                Some(Decision::Hold {
                    rule: rule_id,
                    ts: end - 1,
                })
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, minute, T0};
    use super::*;
    use crate::rules::coverage::Reason;
    use crate::rules::Profile;
    use dustwatch_protocol::Level;

    /// The limit the test minutes' site (in its earthwork phase) is held to.
    fn limit(rule: &WindowRule) -> f64 {
        rule.raise_for(dustwatch_protocol::Phase::Earthwork)
            .min(rule.clear)
    }

    /// The default profile's first absolute window rule.
    fn rule() -> WindowRule {
        Profile::default_profile()
            .windows
            .into_iter()
            .find(|w| w.mode == crate::rules::profile::Mode::Absolute)
            .expect("the default profile has an absolute window rule")
    }

    /// Feed one window of minutes with `value` (None: no data) and return the last minute's
    /// decision.
    fn window(
        rule: &WindowRule,
        state: &mut WindowState,
        day: &mut DayStats,
        value: Option<f64>,
    ) -> Option<Decision<'static>> {
        let mut last = None;
        let mut exceeded = BTreeSet::new();
        for k in 0..rule.window_min {
            let m = match value {
                Some(v) => minute(&[(rule.metric, v)]),
                None => minute(&[]),
            };
            let ctx = context(T0 + k * 60_000, &m, Level::None);
            last = judge_minute(rule, state, &ctx, Some(&mut *day), &mut exceeded)
                .map(Decision::into_owned);
        }
        last
    }

    #[test]
    fn a_window_over_the_limit_raises_and_one_below_the_clear_limit_clears() {
        let mut rule = rule();
        rule.daily_budget = 0;
        rule.min_duration_min = 0;
        let (mut state, mut day) = (
            WindowState::default(),
            DayStats::new("s1", Default::default()),
        );
        let over = window(&rule, &mut state, &mut day, Some(limit(&rule) + 10.0));
        let Some(Decision::Raise {
            rule: id, evidence, ..
        }) = over
        else {
            panic!("expected a raise, got {over:?}");
        };
        assert_eq!(id, rule.id);
        assert_eq!(evidence["limit"], limit(&rule));
        let below = window(&rule, &mut state, &mut day, Some(limit(&rule) - 10.0));
        assert!(matches!(below, Some(Decision::Clear { .. })), "{below:?}");
        assert!(day.not_judged.is_empty());
    }

    #[test]
    fn a_clean_window_decides_nothing() {
        let rule = rule();
        let (mut state, mut day) = (
            WindowState::default(),
            DayStats::new("s1", Default::default()),
        );
        assert_eq!(
            window(&rule, &mut state, &mut day, Some(limit(&rule) - 1.0)),
            None
        );
        assert_eq!(day.not_judged_minutes, 0);
    }

    #[test]
    fn a_window_without_data_is_not_judged_and_the_day_says_why() {
        let rule = rule();
        let (mut state, mut day) = (
            WindowState::default(),
            DayStats::new("s1", Default::default()),
        );
        assert_eq!(window(&rule, &mut state, &mut day, None), None);
        assert_eq!(day.not_judged_minutes, rule.window_min as u32);
        assert_eq!(day.not_judged.len(), 1);
        assert_eq!(day.not_judged[0].rule, rule.id);
        assert!(
            matches!(
                day.not_judged[0].reason,
                Reason::TooLittleData {
                    data_minutes: 0,
                    ..
                }
            ),
            "{:?}",
            day.not_judged[0]
        );
    }
}
