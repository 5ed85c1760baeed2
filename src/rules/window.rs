//! The arithmetic of a window rule: the windowed mean of a metric (absolute or as increment over the reference), with raise and
//! clear limits (hysteresis), a minimum duration and a daily budget of exceedances.

use super::coverage::Reason;
use super::minute::Minute;
use super::profile::{Mode, WindowRule};
use dustwatch_protocol::Phase;

/// Accumulates one tumbling window.
#[derive(Debug, Clone, Default)]
pub struct WindowAcc {
    sum: f64,
    minutes: i64,
    ref_sum: f64,
    ref_minutes: i64,
    max_minute: Option<f64>,
}

/// Hysteresis and budget state of one rule at one site.
#[derive(Debug, Clone, Default)]
pub struct WindowState {
    pub acc: WindowAcc,
    pub above: bool,
    /// Consecutive exceeding minutes.
    pub run_min: i64,
    /// Exceedances counted in the local day `today_date`.
    pub today: u32,
    /// The local day `today` counts for: the allowance starts again on each local day.
    pub today_date: Option<chrono::NaiveDate>,
}

/// The judgement of one closed window.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough valid data (or no reference) to judge, and why.
    Unjudged(Reason),
    /// Judged; `exceeded` when above the raise limit.
    Judged {
        value: f64,
        site_mean: f64,
        ref_mean: Option<f64>,
        limit: f64,
        /// The clear limit applied (below it the condition clears).
        clear: f64,
        /// Judged against the absolute fallback limit, because the increment could not be.
        fallback: Option<Reason>,
        exceeded: bool,
        /// The alert condition (hysteresis state and budget) now holds.
        alert: bool,
        /// The condition cleared in this window.
        cleared: bool,
    },
}

impl WindowAcc {
    pub fn add(&mut self, rule: &WindowRule, site: Option<&Minute>, reference: Option<&Minute>) {
        let Some(v) = site.and_then(|m| m.mean(rule.metric)) else {
            return;
        };
        self.sum += v;
        self.minutes += 1;
        self.max_minute = Some(self.max_minute.map_or(v, |x| x.max(v)));
        if let Some(r) = reference.and_then(|m| m.mean(rule.metric)) {
            self.ref_sum += r;
            self.ref_minutes += 1;
        }
    }
}

impl WindowState {
    /// Close the window: judge it and update hysteresis, duration and budget.
    /// `date` is the local day the window belongs to (the day of its last instant);
    /// `reference` the site's reference station, if it has one.
    pub fn judge(
        &mut self,
        rule: &WindowRule,
        phase: Phase,
        date: chrono::NaiveDate,
        reference: Option<&str>,
    ) -> Verdict {
        let acc = std::mem::take(&mut self.acc);
        if self.today_date != Some(date) {
            self.today_date = Some(date);
            self.today = 0;
        }
        let need = (rule.min_coverage * rule.window_min as f64).ceil() as i64;
        if acc.minutes == 0 || acc.minutes < need {
            return Verdict::Unjudged(Reason::TooLittleData {
                data_minutes: acc.minutes as u32,
                needed_minutes: need.max(1) as u32,
            });
        }
        let site_mean = acc.sum / acc.minutes as f64;
        let mut fallback = None;
        let (value, ref_mean, limit, clear) = match rule.mode {
            Mode::Absolute => (site_mean, None, rule.raise_for(phase), rule.clear),
            Mode::Increment if acc.ref_minutes < need => {
                let why = match reference {
                    None => Reason::NoReference,
                    Some(r) => Reason::ReferenceMissing {
                        reference: r.to_string(),
                    },
                };
                let Some(raise) = rule.fallback_raise else {
                    return Verdict::Unjudged(why);
                };
                fallback = Some(why);
                (site_mean, None, raise, rule.fallback_clear.unwrap_or(raise))
            }
            Mode::Increment => {
                let r = acc.ref_sum / acc.ref_minutes as f64;
                let subtracted = rule.reference_cap.map_or(r, |cap| r.min(cap));
                (
                    site_mean - subtracted,
                    Some(r),
                    rule.raise_for(phase),
                    rule.clear,
                )
            }
        };
        let exceeded = value > limit;
        let mut cleared = false;
        if exceeded {
            self.run_min += rule.window_min;
            self.today += 1;
            if self.run_min >= rule.min_duration_min {
                self.above = true;
            }
        } else {
            self.run_min = 0;
            // Between clear and raise the state holds: no flapping on a signal at the limit.
            if value < clear.min(limit) && self.above {
                self.above = false;
                cleared = true;
            }
        }
        Verdict::Judged {
            value,
            site_mean,
            ref_mean,
            limit,
            clear: clear.min(limit),
            fallback,
            exceeded,
            alert: self.above && self.today > rule.daily_budget,
            cleared,
        }
    }
}
