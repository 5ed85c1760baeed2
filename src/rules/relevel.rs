//! Levels that arrive late: the city's level is sometimes entered after it took force. Each
//! site keeps what it did minute by minute (work, earthwork) for `max_backfill_s`; a level change
//! stamped in that past judges the restriction windows it covers again.
//!
//! Only what becomes forbidden is raised (stamped at the last instant of the window it judges).
//! A late change that lowers the level does not withdraw an alert already raised: the office
//! sees the alert with the level it was raised under and decides.

use super::profile::RestrictionRule;
use super::timeline::LevelTimeline;
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
        let w = window_min * 60_000;
        let mut out = Vec::new();
        let Some(last) = self.minutes.back() else {
            return out;
        };
        let mut start = from.div_euclid(w) * w;
        while start + w <= last.start + 60_000 {
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
            for (name, earth) in [("work-restriction", false), ("earthwork-restriction", true)] {
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
