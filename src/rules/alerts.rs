//! The alert lifecycle: one alert per (site, rule) while it is open. Raised -> (acknowledged) ->
//! condition cleared -> re-checked clean for a period -> closed. A re-trigger while open updates
//! the same alert; repeated offences escalate its severity. Only state changes are published.

use super::profile::Severity;
use dustwatch_protocol::{EventTime, Level};
use std::collections::HashMap;

/// The alert record, its states, kinds and changes are shared with the store and the API.
pub use dustwatch_protocol::{Alert, AlertState, Change, RuleKind};

#[derive(Debug, Clone)]
pub struct Transition {
    pub change: Change,
    pub alert: Alert,
}

/// Open alerts and offence history; owned by the rules engine.
#[derive(Debug, Default)]
pub struct AlertBook {
    open: HashMap<(String, String), Alert>,
    /// Start of each cleared alert's current re-check period, by alert id: the clear, or the
    /// last window after it that was not clean. Not stored on its own: after a restart it is
    /// the later of the clear and the last update.
    recheck_from: HashMap<i64, EventTime>,
    /// Offences per (site, rule) over the alerts already closed.
    history: HashMap<(String, String), u32>,
    next_id: i64,
    escalate_after: u32,
    /// Clean time before a cleared alert closes, per kind (gaps close as soon as data is back).
    recheck_ms: i64,
    /// Alerts held open by an order, in event time.
    holds: crate::store::acting::Holds,
    /// Ids shared with other instances, when there are any.
    ids: super::alert_ids::IdSource,
}

/// Everything needed to raise an alert.
pub struct Raise<'a> {
    pub site: &'a str,
    pub rule: &'a str,
    pub kind: RuleKind,
    pub severity: Severity,
    pub ts: i64,
    pub level: Level,
    pub evidence: serde_json::Value,
}

impl AlertBook {
    pub fn new(escalate_after: u32, recheck_s: i64) -> AlertBook {
        AlertBook {
            next_id: 1,
            escalate_after: escalate_after.max(1),
            recheck_ms: recheck_s * 1000,
            ..Default::default()
        }
    }

    /// Draw new alert ids from `ids` (several instances on one database).
    pub fn set_id_source(&mut self, ids: super::alert_ids::IdSource) {
        self.ids = ids;
    }

    /// Forget the open alerts and offence history of the sites `owns` selects (another
    /// instance judges them now; they are restored from the store when they come back).
    pub fn forget_sites(&mut self, owns: &dyn Fn(&str) -> bool) {
        let recheck = &mut self.recheck_from;
        self.open.retain(|(site, _), a| {
            let keep = !owns(site);
            if !keep {
                recheck.remove(&a.id);
            }
            keep
        });
        self.history.retain(|(site, _), _| !owns(site));
    }

    /// An alert in `holds` is closed by a re-check only on data from its hold's end on (an order
    /// waits for a passed re-inspection).
    pub fn set_holds(&mut self, holds: crate::store::acting::Holds) {
        self.holds = holds;
    }

    /// Restore open alerts and offence counts after a restart.
    pub fn restore(&mut self, open: Vec<Alert>, history: Vec<(String, String, u32)>, max_id: i64) {
        for a in open.into_iter().filter(Alert::is_open) {
            // The re-check restarts are stored as updates: the period runs from the later one.
            if let Some(c) = a.cleared_ts {
                self.recheck_from.insert(a.id, c.max(a.updated_ts));
            }
            self.open.insert((a.site.clone(), a.rule.clone()), a);
        }
        for (site, rule, n) in history {
            self.history.insert((site, rule), n);
        }
        self.next_id = self.next_id.max(max_id + 1);
    }

    fn severity_for(&self, base: Severity, offences: u32) -> Severity {
        // Every `escalate_after` offences raise the severity one step.
        let steps = offences / self.escalate_after;
        (0..steps).fold(base, |s, _| s.escalated())
    }

    pub fn raise(&mut self, r: Raise<'_>) -> Option<Transition> {
        let key = (r.site.to_string(), r.rule.to_string());
        let past = self.history.get(&key).copied().unwrap_or(0);
        let ts = EventTime(r.ts);
        if let Some(a) = self.open.get_mut(&key) {
            a.updated_ts = a.updated_ts.max(ts);
            a.evidence = r.evidence;
            let change = match a.state {
                AlertState::Active => Change::Updated,
                _ => {
                    a.state = AlertState::Active;
                    a.cleared_ts = None;
                    self.recheck_from.remove(&a.id);
                    a.offences += 1;
                    Change::Reactivated
                }
            };
            let offences = past + a.offences;
            let sev = self.severity_for(r.severity, offences);
            if let Some(a) = self.open.get_mut(&key) {
                a.severity = a.severity.max(sev);
                return Some(Transition {
                    change,
                    alert: a.clone(),
                });
            }
            return None;
        }
        let id = self.ids.next_id().unwrap_or(self.next_id);
        let alert = Alert {
            id,
            site: r.site.to_string(),
            rule: r.rule.to_string(),
            kind: r.kind,
            severity: self.severity_for(r.severity, past + 1),
            state: AlertState::Active,
            acknowledged: false,
            ack_by: None,
            ack_comment: None,
            opened_ts: ts,
            updated_ts: ts,
            cleared_ts: None,
            closed_ts: None,
            offences: 1,
            level: r.level,
            evidence: r.evidence,
        };
        self.next_id = self.next_id.max(id + 1);
        self.open.insert(key, alert.clone());
        Some(Transition {
            change: Change::Opened,
            alert,
        })
    }

    /// The condition is gone: active -> cleared (the re-check period starts).
    pub fn clear(&mut self, site: &str, rule: &str, ts: i64) -> Option<Transition> {
        let a = self.open.get_mut(&(site.to_string(), rule.to_string()))?;
        if a.state != AlertState::Active {
            return None;
        }
        let ts = EventTime(ts);
        a.state = AlertState::Cleared;
        a.cleared_ts = Some(ts);
        self.recheck_from.insert(a.id, ts);
        a.updated_ts = a.updated_ts.max(ts);
        Some(Transition {
            change: Change::Cleared,
            alert: a.clone(),
        })
    }

    /// A judged window up to `ts` was not clean (below the raise condition, not below the clear
    /// limit): a cleared alert's re-check period starts again at `ts`. The update is stored
    /// (so a restart keeps it), not published.
    pub fn hold(&mut self, site: &str, rule: &str, ts: i64) -> Option<Transition> {
        let a = self.open.get_mut(&(site.to_string(), rule.to_string()))?;
        if a.state != AlertState::Cleared {
            return None;
        }
        let ts = EventTime(ts);
        let from = self.recheck_from.entry(a.id).or_insert(ts);
        *from = (*from).max(ts);
        a.updated_ts = a.updated_ts.max(ts);
        Some(Transition {
            change: Change::Updated,
            alert: a.clone(),
        })
    }

    /// Clear and close at once (a data gap closes as soon as data is back).
    pub fn resolve(&mut self, site: &str, rule: &str, ts: i64) -> Vec<Transition> {
        let mut out: Vec<Transition> = self.clear(site, rule, ts).into_iter().collect();
        if let Some(t) = self.close(site, rule, ts) {
            out.push(t);
        }
        out
    }

    /// What the alert was raised on no longer holds on what is now known (a level or a
    /// sprinkling event that arrived late): close it at once, saying why in its evidence. The
    /// offence is taken back, so it does not escalate later alerts.
    pub fn withdraw(&mut self, site: &str, rule: &str, ts: i64, why: &str) -> Option<Transition> {
        let a = self.open.get_mut(&(site.to_string(), rule.to_string()))?;
        if let Some(e) = a.evidence.as_object_mut() {
            e.insert("withdrawn".into(), serde_json::Value::from(why));
        }
        a.offences = a.offences.saturating_sub(1);
        self.close(site, rule, ts)
    }

    /// The open alert of `rule` at `site`, if any.
    pub fn open_alert(&self, site: &str, rule: &str) -> Option<&Alert> {
        self.open.get(&(site.to_string(), rule.to_string()))
    }

    fn close(&mut self, site: &str, rule: &str, ts: i64) -> Option<Transition> {
        let key = (site.to_string(), rule.to_string());
        let mut a = self.open.remove(&key)?;
        let ts = EventTime(ts);
        self.recheck_from.remove(&a.id);
        a.state = AlertState::Closed;
        a.closed_ts = Some(ts);
        a.updated_ts = a.updated_ts.max(ts);
        *self.history.entry(key).or_default() += a.offences;
        Some(Transition {
            change: Change::Closed,
            alert: a,
        })
    }

    /// The site's clean data has reached `ts`: close cleared alerts whose re-check passed.
    pub fn recheck(&mut self, site: &str, ts: i64) -> Vec<Transition> {
        let due: Vec<String> = self
            .open
            .values()
            .filter(|a| a.site == site && a.state == AlertState::Cleared)
            .filter(|a| {
                self.recheck_from
                    .get(&a.id)
                    .copied()
                    .or(a.cleared_ts)
                    .is_some_and(|c| EventTime(ts) - c >= self.recheck_ms)
            })
            // Last: with shared holds this reads the store, so only for alerts about to close.
            .filter(|a| !self.holds.is_held(a.id, ts))
            .map(|a| a.rule.clone())
            .collect();
        due.iter()
            .filter_map(|rule| self.close(site, rule, ts))
            .collect()
    }

    pub fn acknowledge(&mut self, id: i64, by: &str, comment: &str) -> Option<Transition> {
        let a = self.open.values_mut().find(|a| a.id == id)?;
        a.acknowledged = true;
        a.ack_by = Some(by.to_string());
        a.ack_comment = Some(comment.to_string());
        Some(Transition {
            change: Change::Acknowledged,
            alert: a.clone(),
        })
    }

    pub fn is_active(&self, site: &str, rule: &str) -> bool {
        self.open
            .get(&(site.to_string(), rule.to_string()))
            .is_some_and(|a| a.state == AlertState::Active)
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::time::{HOUR, MINUTE};

    fn raise(book: &mut AlertBook, ts: i64) -> Option<Transition> {
        book.raise(Raise {
            site: "s1",
            rule: "pm10-hourly",
            kind: RuleKind::Window,
            severity: Severity::Warning,
            ts,
            level: Level::Red,
            evidence: serde_json::json!({}),
        })
    }

    #[test]
    fn lifecycle_and_escalation() {
        let mut book = AlertBook::new(2, 3600);
        assert_eq!(raise(&mut book, 0).map(|t| t.change), Some(Change::Opened));
        assert_eq!(
            raise(&mut book, MINUTE).map(|t| t.change),
            Some(Change::Updated)
        );
        assert_eq!(
            book.clear("s1", "pm10-hourly", 120_000).map(|t| t.change),
            Some(Change::Cleared)
        );
        assert!(book.recheck("s1", 120_000 + 3_599_999).is_empty());
        // Re-trigger during the re-check: same alert, second offence escalates.
        let t = raise(&mut book, 200_000).expect("reactivates");
        assert_eq!(t.change, Change::Reactivated);
        assert_eq!(t.alert.id, 1);
        assert_eq!(t.alert.severity, Severity::Violation);
        book.clear("s1", "pm10-hourly", 300_000);
        let closed = book.recheck("s1", 300_000 + HOUR);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].change, Change::Closed);
        // A new offence after closing opens a new alert, escalated by history.
        let t = raise(&mut book, 10_000_000).expect("opens");
        assert_eq!((t.change, t.alert.id), (Change::Opened, 2));
        assert_eq!(t.alert.severity, Severity::Violation);
    }
}
