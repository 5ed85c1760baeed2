//! The alert lifecycle: one alert per (site, rule) while it is open. Raised -> (acknowledged) ->
//! condition cleared -> re-checked clean for a period -> closed. A re-trigger while open updates
//! the same alert; repeated offences escalate its severity. Only state changes are published.

use super::profile::Severity;
use dustwatch_protocol::Level;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Active,
    Cleared,
    Closed,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Active => "active",
            AlertState::Cleared => "cleared",
            AlertState::Closed => "closed",
        }
    }
}

/// Rule kinds (docs/rules.md; one file each under `rules/kinds/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Window,
    Restriction,
    Sprinkling,
    Noise,
    Night,
    Gap,
    Fault,
}

impl RuleKind {
    pub const ALL: [RuleKind; 7] = [
        RuleKind::Window,
        RuleKind::Restriction,
        RuleKind::Sprinkling,
        RuleKind::Noise,
        RuleKind::Night,
        RuleKind::Gap,
        RuleKind::Fault,
    ];
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Window => "window",
            RuleKind::Restriction => "restriction",
            RuleKind::Sprinkling => "sprinkling",
            RuleKind::Noise => "noise",
            RuleKind::Night => "night",
            RuleKind::Gap => "gap",
            RuleKind::Fault => "fault",
        }
    }
    pub fn parse(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: i64,
    pub site: String,
    pub rule: String,
    pub kind: RuleKind,
    pub severity: Severity,
    pub state: AlertState,
    pub acknowledged: bool,
    pub ack_by: Option<String>,
    pub ack_comment: Option<String>,
    /// Event times, Unix ms.
    pub opened_ts: i64,
    pub updated_ts: i64,
    pub cleared_ts: Option<i64>,
    pub closed_ts: Option<i64>,
    /// Start of the current re-check period: the clear, or the last window after it that was
    /// not clean. Not stored on its own: after a restart it is the later of the clear and the
    /// last update.
    #[serde(skip)]
    pub recheck_from: Option<i64>,
    /// Times this alert's condition was raised (1 at open).
    pub offences: u32,
    /// City level when the alert opened.
    pub level: Level,
    /// What triggered it: readings, times, means, limits.
    pub evidence: serde_json::Value,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Opened,
    Reactivated,
    Cleared,
    Closed,
    Acknowledged,
    /// New evidence on an active alert: stored, not published.
    Updated,
}

impl Change {
    /// State changes are published on MQTT; evidence updates are not.
    pub fn is_state_change(self) -> bool {
        self != Change::Updated
    }
    pub fn name(self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Reactivated => "reactivated",
            Change::Cleared => "cleared",
            Change::Closed => "closed",
            Change::Acknowledged => "acknowledged",
            Change::Updated => "updated",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub change: Change,
    pub alert: Alert,
}

/// Open alerts and offence history; owned by the rules engine.
#[derive(Debug, Default)]
pub struct AlertBook {
    open: HashMap<(String, String), Alert>,
    /// Offences per (site, rule) over the alerts already closed.
    history: HashMap<(String, String), u32>,
    next_id: i64,
    escalate_after: u32,
    /// Clean time before a cleared alert closes, per kind (gaps close as soon as data is back).
    recheck_ms: i64,
    /// Alerts held open by an order, in event time.
    holds: crate::store::acting::Holds,
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

    /// An alert in `holds` is closed by a re-check only on data from its hold's end on (an order
    /// waits for a passed re-inspection).
    pub fn set_holds(&mut self, holds: crate::store::acting::Holds) {
        self.holds = holds;
    }

    /// Restore open alerts and offence counts after a restart.
    pub fn restore(&mut self, open: Vec<Alert>, history: Vec<(String, String, u32)>, max_id: i64) {
        for a in open {
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
        if let Some(a) = self.open.get_mut(&key) {
            a.updated_ts = a.updated_ts.max(r.ts);
            a.evidence = r.evidence;
            let change = match a.state {
                AlertState::Active => Change::Updated,
                _ => {
                    a.state = AlertState::Active;
                    a.cleared_ts = None;
                    a.recheck_from = None;
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
        let alert = Alert {
            id: self.next_id,
            site: r.site.to_string(),
            rule: r.rule.to_string(),
            kind: r.kind,
            severity: self.severity_for(r.severity, past + 1),
            state: AlertState::Active,
            acknowledged: false,
            ack_by: None,
            ack_comment: None,
            opened_ts: r.ts,
            updated_ts: r.ts,
            cleared_ts: None,
            closed_ts: None,
            recheck_from: None,
            offences: 1,
            level: r.level,
            evidence: r.evidence,
        };
        self.next_id += 1;
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
        a.state = AlertState::Cleared;
        a.cleared_ts = Some(ts);
        a.recheck_from = Some(ts);
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
        a.recheck_from = Some(a.recheck_from.map_or(ts, |r| r.max(ts)));
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
            .filter(|a| !self.holds.is_held(a.id, ts))
            .filter(|a| {
                a.recheck_from
                    .or(a.cleared_ts)
                    .is_some_and(|c| ts - c >= self.recheck_ms)
            })
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
            raise(&mut book, 60_000).map(|t| t.change),
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
        let closed = book.recheck("s1", 300_000 + 3_600_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].change, Change::Closed);
        // A new offence after closing opens a new alert, escalated by history.
        let t = raise(&mut book, 10_000_000).expect("opens");
        assert_eq!((t.change, t.alert.id), (Change::Opened, 2));
        assert_eq!(t.alert.severity, Severity::Violation);
    }
}
