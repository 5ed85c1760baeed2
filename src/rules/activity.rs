//! Work on a construction site, inferred minute by minute from its noise and dust (the
//! profile's `[activity]`), and the window of such minutes that the restriction and night-work
//! rules judge together.

use super::kinds::{round1, MinuteContext};
use super::profile::Activity;
use dustwatch_protocol::{Level, Metric};
use serde_json::json;

/// What one minute says about work on the site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkMinute {
    pub work: bool,
    /// Work that is earthwork: a digging phase and a dust burst over the background.
    pub earthwork: bool,
    pub noise: Option<f64>,
    pub pm10_increment: Option<f64>,
}

/// Infer work from the minute; `sprinkling` when a sprinkling run covers part of it.
pub fn infer(act: &Activity, ctx: &MinuteContext<'_>, sprinkling: bool) -> WorkMinute {
    let noise = ctx.minute.mean(Metric::NoiseDba);
    let increment = match (
        ctx.minute.mean(Metric::Pm10),
        ctx.reference.and_then(|r| r.mean(Metric::Pm10)),
    ) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let dust_burst = act
        .dust_pm10_increment
        .is_some_and(|t| increment.is_some_and(|i| i >= t));
    // A fog cannon or a water truck is loud and its run is required: during a run the noise is
    // not evidence of work. Dust over a work threshold still is: digging under the mist.
    let digs = act.earthwork_phases.contains(&ctx.phase)
        && increment.is_some_and(|i| i >= act.earthwork_pm10_increment);
    let loud = !sprinkling && noise.is_some_and(|n| n >= act.noise_dba);
    let work = loud || dust_burst || (sprinkling && digs);
    WorkMinute {
        work,
        earthwork: work && digs,
        noise,
        pm10_increment: increment,
    }
}

/// The working minutes of one activity window so far.
#[derive(Debug, Default)]
pub struct ActivityWindow {
    pub active: i64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub max_noise: f64,
    pub max_pm10_increment: f64,
}

impl ActivityWindow {
    /// Count a working minute [start, end).
    pub fn add(&mut self, w: &WorkMinute, start: i64, end: i64) {
        self.active += 1;
        self.first_ts.get_or_insert(start);
        self.last_ts = Some(end);
        self.max_noise = self.max_noise.max(w.noise.unwrap_or(0.0));
        self.max_pm10_increment = self.max_pm10_increment.max(w.pm10_increment.unwrap_or(0.0));
    }

    /// The evidence of an alert on this window, `what` naming the forbidden activity.
    pub fn evidence(&self, what: &str, level: Level, start: i64, end: i64) -> serde_json::Value {
        json!({"activity": what, "level": level.name(), "active_minutes": self.active,
               "window_start": start, "window_end": end,
               "first_active": self.first_ts, "last_active": self.last_ts,
               "max_noise_dba": round1(self.max_noise),
               "max_pm10_increment": round1(self.max_pm10_increment)})
    }
}

#[cfg(test)]
mod tests {
    use super::super::kinds::test_support::{context, minute, T0};
    use super::*;
    use crate::rules::Profile;

    #[test]
    fn noise_is_work_but_not_while_sprinkling() {
        let act = Profile::default_profile().activity;
        let m = minute(&[(Metric::NoiseDba, act.noise_dba + 5.0)]);
        let ctx = context(T0, &m, Level::None);
        assert!(infer(&act, &ctx, false).work);
        assert!(!infer(&act, &ctx, true).work);
        let quiet = minute(&[(Metric::NoiseDba, act.noise_dba - 5.0)]);
        assert!(!infer(&act, &context(T0, &quiet, Level::None), false).work);
    }

    #[test]
    fn earthwork_needs_dust_over_the_reference() {
        let act = Profile::default_profile().activity;
        let site = minute(&[
            (Metric::NoiseDba, act.noise_dba + 5.0),
            (Metric::Pm10, 100.0 + act.earthwork_pm10_increment),
        ]);
        let background = minute(&[(Metric::Pm10, 100.0)]);
        let mut ctx = context(T0, &site, Level::None);
        // Without a reference the increment is unknown: work, not earthwork.
        assert!(!infer(&act, &ctx, false).earthwork);
        ctx.reference = Some(&background);
        let w = infer(&act, &ctx, false);
        assert!(w.work && w.earthwork, "{w:?}");
    }
}
