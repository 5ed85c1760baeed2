//! A city level entered after the minutes it covers were judged (see `rules::relevel`).

use super::*;

impl Engine {
    /// A level change stamped before minutes already judged: judge the restriction windows it
    /// covers again (within the backfill horizon).
    pub(super) fn rejudge_levels(
        &mut self,
        before: &LevelTimeline,
        from: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(r) = self
            .profile
            .restriction
            .as_ref()
            .map(|r| r.get_ref().clone())
        else {
            return;
        };
        let act = self.profile.activity.get_ref().clone();
        let from = from.max(
            self.fleet_now
                .saturating_sub(self.profile.max_backfill_s * 1000),
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
            for name in ["work-restriction", "earthwork-restriction"] {
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
                    let why = format!(
                        "the level was corrected after the alert was raised: {} from {since}",
                        self.levels.at(from).name(),
                    );
                    transitions.extend(self.book.withdraw(&id, name, closing_ts(a), &why));
                }
            }
            for b in breaches {
                let level = self.levels.max_in(b.window_start, b.window_end);
                transitions.extend(self.book.raise(Raise {
                    site: &id,
                    rule: b.rule,
                    kind: RuleKind::Restriction,
                    severity: r.severity,
                    ts: b.window_end - 1,
                    level,
                    evidence: json!({"activity": if b.rule == "work-restriction" {"work"} else {"earthwork"},
                        "level": level.name(), "active_minutes": b.active_minutes,
                        "window_start": b.window_start, "window_end": b.window_end,
                        "judged_again": "the level was entered after the window was judged"}),
                }));
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
