//! One minute of one site: its day's figures, then each rule kind's verdict on it (one file per
//! kind under `rules::kinds`), applied to the alert book in a fixed order: the window rules in
//! profile order, then restriction, night work and noise.

use super::*;
use crate::rules::activity;
use crate::rules::kinds::{night_work, noise, pm_window, restriction, Decision, MinuteContext};
use dustwatch_protocol::time::SECOND;

/// Who a site is, for judging its minutes.
pub(super) struct SiteRole<'a> {
    pub id: &'a str,
    pub kind: SiteKind,
    pub phase: Phase,
    /// The site's reference station, if any (may name the site itself).
    pub reference: Option<&'a str>,
}

impl Engine {
    pub(super) fn judge_minute(
        &mut self,
        site: &SiteRole<'_>,
        s: &mut SiteState,
        m: i64,
        transitions: &mut Vec<Transition>,
        out: &mut Vec<Output>,
    ) {
        let id = site.id;
        let date = self.local_date(m);
        if s.day.as_ref().is_none_or(|d| d.date != date) {
            if let Some(prev) = s.day.take() {
                self.close_day(id, site.kind, prev, s, transitions, out);
            }
            let mut day = DayStats::new(id, date);
            // A day that was open when the aggregator stopped continues from its saved figures.
            if let Some(seed) = self.seeds.remove(&(id.to_string(), date)) {
                *s.sprinkle_base.entry(date).or_default() += seed.sprinkling_runs;
                s.exceedance_base = seed.exceedance_minutes;
                day = DayStats {
                    sprinkling_runs: 0,
                    exceedance_minutes: seed.exceedance_minutes,
                    ..seed
                };
            } else {
                s.exceedance_base = 0;
            }
            let (from, to) = day_bounds(self.tz, date);
            day.sprinkling_runs = s.sprinkle_base.get(&date).copied().unwrap_or(0)
                + s.sprinklers.runs(from, to, self.min_run_ms());
            // Alerts stamped in this day that were decided before it opened (a device's fault
            // raised on its own clock, ahead of the site's judgement).
            if let Some((opened, closed)) = s.pending.remove(&date) {
                day.alerts_opened += opened;
                day.alerts_closed += closed;
            }
            s.pending.retain(|d, _| *d > date);
            s.day = Some(day);
        }
        let k0 = transitions.len();
        self.judge_minute_rules(site, s, m, transitions);
        for t in &transitions[k0..] {
            if let Some(day) = tally(self.tz, s, t) {
                out.push(Output::DayClosed(day));
            }
        }
    }

    /// The minute's rules (the day it belongs to is open).
    pub(super) fn judge_minute_rules(
        &mut self,
        site: &SiteRole<'_>,
        s: &mut SiteState,
        m: i64,
        transitions: &mut Vec<Transition>,
    ) {
        let reference = site.reference.filter(|r| *r != site.id);
        let empty = Minute::default();
        let minute = s.minutes.get(&m).unwrap_or(&empty).clone();
        let ref_minute = reference.and_then(|r| self.reference_minute(r, m));
        let ctx = MinuteContext {
            site: site.id,
            phase: site.phase,
            start: m,
            level: self.levels.at(m),
            minute: &minute,
            reference: ref_minute.as_ref(),
            reference_id: reference,
            tz: self.tz,
        };
        if let Some(day) = s.day.as_mut() {
            if minute.has_pm() {
                day.data_minutes += 1;
            }
            day.level_max = day.level_max.max(ctx.level);
        }

        let profile = &self.profile;
        let mut decisions = Vec::new();
        for (rule, state) in profile.windows.iter().zip(s.windows.iter_mut()) {
            if rule.kinds.contains(&site.kind) {
                decisions.extend(pm_window::judge_minute(
                    rule,
                    state,
                    &ctx,
                    s.day.as_mut(),
                    &mut s.exceeded_minutes,
                ));
            }
        }
        if let Some(day) = s.day.as_mut() {
            let (d0, d1) = day_bounds(self.tz, day.date);
            day.exceedance_minutes =
                s.exceedance_base + s.exceeded_minutes.range(d0..d1).count() as u32;
        }
        if site.kind == SiteKind::Construction {
            judge_work(profile, s, &ctx, &mut decisions);
            if let Some(rule) = &profile.noise {
                // A noise window without enough data is not in the day's figures, which count
                // the unjudged time of the window and sprinkling rules.
                if let noise::NoiseVerdict::Judged(d) =
                    noise::judge_minute(rule, &mut s.noise, &ctx)
                {
                    decisions.push(d);
                }
            }
        }
        for d in decisions {
            d.apply(&mut self.book, site.id, transitions);
        }
    }
}

/// Work on a construction site: the minute's activity is inferred, logged (for levels entered
/// late) and counted; at the end of an activity window the restriction and night-work rules
/// judge it.
fn judge_work<'p>(
    p: &'p Profile,
    s: &mut SiteState,
    ctx: &MinuteContext<'_>,
    decisions: &mut Vec<Decision<'p>>,
) {
    let (m, end) = (ctx.start, ctx.end());
    let sprinkling = s
        .sprinklers
        .intervals(end)
        .iter()
        .any(|(a, b)| *a < end && *b > m);
    let work = activity::infer(&p.activity, ctx, sprinkling);
    let in_night = p
        .night
        .as_ref()
        .is_some_and(|n| night_work::in_hours(n, ctx));
    s.act_log.push(
        ActivityMinute {
            start: m,
            work: work.work,
            earthwork: work.earthwork,
        },
        p.max_backfill_s * SECOND,
    );
    if work.work {
        s.activity.add(&work, m, end);
        if let Some(day) = s.day.as_mut() {
            day.activity_minutes += 1;
            if in_night {
                day.night_activity_minutes += 1;
            }
        }
        if in_night {
            s.night_active += 1;
        }
    }
    if let Some(r) = &p.restriction {
        s.forbidden.count(r, &work, ctx.level);
    }
    if ctx.closes_window(p.activity.window_min) {
        let window = std::mem::take(&mut s.activity);
        let forbidden = std::mem::take(&mut s.forbidden);
        let night_active = std::mem::take(&mut s.night_active);
        if let Some(r) = &p.restriction {
            decisions.extend(restriction::judge_window(
                r,
                &p.activity,
                &forbidden,
                &window,
                ctx,
            ));
        }
        if let Some(n) = &p.night {
            decisions.push(night_work::judge_window(
                n,
                &p.activity,
                night_active,
                &window,
                ctx,
            ));
        }
    }
}
