//! A city level entered after the minutes it covers were judged (see `rules::relevel`).

use super::*;
use crate::rules::kinds::restriction;
use dustwatch_protocol::time::SECOND;

impl Engine {
    /// A level change stamped before minutes already judged: judge the restriction windows it
    /// covers again (within the backfill horizon).
    pub(super) fn rejudge_levels(
        &mut self,
        before: &LevelTimeline,
        from: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(r) = self.profile.restriction.clone() else {
            return;
        };
        let act = self.profile.activity.clone();
        let from = from.max(
            self.fleet_now
                .saturating_sub(self.profile.max_backfill_s * SECOND),
        );
        let mut ids: Vec<String> = self
            .sites
            .iter()
            .filter(|(_, s)| s.judged_to.is_some_and(|j| j > from))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in ids {
            let breaches = match self.sites.get(&id) {
                Some(s) => s.act_log.breaches(
                    before,
                    &self.levels,
                    &r,
                    from,
                    act.window_min,
                    act.min_active_minutes,
                ),
                None => continue,
            };
            let mut transitions = Vec::new();
            // A lower level entered late: open alerts no window since their raise supports any
            // more are withdrawn.
            for name in [restriction::WORK, restriction::EARTHWORK] {
                let Some(a) = self.book.open_alert(&id, name) else {
                    continue;
                };
                let w = act.window_min * MINUTE;
                let raised_window = (a.opened_ts.ms() + 1 - w).div_euclid(w) * w;
                if raised_window + w <= from {
                    continue;
                }
                let supported = self.sites.get(&id).and_then(|s| {
                    s.act_log.still_forbidden(
                        &self.levels,
                        &r,
                        name,
                        raised_window,
                        act.window_min,
                        act.min_active_minutes,
                    )
                });
                if supported == Some(false) {
                    let since = self.tz.timestamp_millis_opt(from).single().map_or_else(
                        || from.to_string(),
                        |t| t.format("%Y-%m-%d %H:%M").to_string(),
                    );
                    restriction::withdraw_late(name, closing_ts(a), self.levels.at(from), &since)
                        .apply(&mut self.book, &id, &mut transitions);
                }
            }
            for b in breaches {
                let level = self.levels.max_in(b.window_start, b.window_end);
                restriction::raise_late(&r, &b, level).apply(&mut self.book, &id, &mut transitions);
            }
            self.record(&id, transitions, out);
        }
    }
}

/// A withdrawn alert closes at the instant it was last raised or updated: the verdict it was is
/// taken back where it was made.
fn closing_ts(a: &crate::rules::Alert) -> i64 {
    a.updated_ts.max(a.opened_ts).ms()
}
