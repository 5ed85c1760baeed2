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
