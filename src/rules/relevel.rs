//! Levels that arrive late: the city's level is sometimes entered after it took force. Each
//! site keeps what it did minute by minute (work, earthwork) for `max_backfill_s`; a level change
//! stamped in that past judges the restriction windows it covers again.
//!
//! What becomes forbidden is raised (stamped at the last instant of the window it judges). A late
//! change that lowers the level withdraws an open restriction alert when no window since it was
//! raised is forbidden under the corrected levels: it is closed at once with the reason in its
//! evidence, and its offence does not count towards escalation.

use super::kinds::restriction::{EARTHWORK, WORK};
use super::profile::RestrictionRule;
use super::timeline::LevelTimeline;
use dustwatch_protocol::time::MINUTE;
use std::collections::VecDeque;

/// One judged minute of a construction site.
#[derive(Debug, Clone, Copy)]
pub struct ActivityMinute {
    pub start: i64,
    pub work: bool,
    pub earthwork: bool,
}

/// The site's judged minutes, oldest first, bounded by the backfill horizon.
#[derive(Debug, Default)]
pub struct ActivityLog {
    minutes: VecDeque<ActivityMinute>,
}

/// A restriction window that the late level makes forbidden.
#[derive(Debug, Clone, PartialEq)]
pub struct LateBreach {
    pub rule: &'static str,
    pub window_start: i64,
    pub window_end: i64,
    pub active_minutes: i64,
}

impl ActivityLog {
    pub fn push(&mut self, m: ActivityMinute, keep_ms: i64) {
        self.minutes.push_back(m);
        while self
            .minutes
            .front()
            .is_some_and(|f| f.start < m.start - keep_ms)
        {
            self.minutes.pop_front();
        }
    }

    /// Whether any whole window from `from` on still holds `min_active` forbidden minutes of
    /// `rule_name` under `levels`; `None` when the log no longer reaches back to `from`.
    pub fn still_forbidden(
        &self,
        levels: &LevelTimeline,
        rule: &RestrictionRule,
        rule_name: &str,
        from: i64,
        window_min: i64,
        min_active: i64,
    ) -> Option<bool> {
        let first = self.minutes.front()?;
        if first.start > from {
            return None;
        }
        let w = window_min * MINUTE;
        let earth = rule_name == EARTHWORK;
        let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
        for m in self.minutes.iter().filter(|m| m.start >= from) {
            let level = levels.at(m.start);
            let forbidden = if earth {
                m.earthwork && level >= rule.earthwork_from
            } else {
                m.work && level >= rule.all_work_from
            };
            if forbidden {
                *counts.entry(m.start.div_euclid(w)).or_default() += 1;
            }
        }
        Some(counts.values().any(|n| *n >= min_active))
    }

    /// Windows of `window_min` minutes from `from` on, judged whole, whose forbidden minutes
    /// reach `min_active` under `new` but did not under `old`.
    pub fn breaches(
        &self,
        old: &LevelTimeline,
        new: &LevelTimeline,
        rule: &RestrictionRule,
        from: i64,
        window_min: i64,
        min_active: i64,
    ) -> Vec<LateBreach> {
        let w = window_min * MINUTE;
        let mut out = Vec::new();
        let Some(last) = self.minutes.back() else {
            return out;
        };
        let mut start = from.div_euclid(w) * w;
        while start + w <= last.start + MINUTE {
            let count = |t: &LevelTimeline, earth: bool| {
                self.minutes
                    .iter()
                    .filter(|m| (start..start + w).contains(&m.start))
                    .filter(|m| {
                        let level = t.at(m.start);
                        if earth {
                            m.earthwork && level >= rule.earthwork_from
                        } else {
                            m.work && level >= rule.all_work_from
                        }
                    })
                    .count() as i64
            };
            for (name, earth) in [(WORK, false), (EARTHWORK, true)] {
                let (before, after) = (count(old, earth), count(new, earth));
                if before < min_active && after >= min_active {
                    out.push(LateBreach {
                        rule: name,
                        window_start: start,
                        window_end: start + w,
                        active_minutes: after,
                    });
                }
            }
            start += w;
        }
        out
    }
}
