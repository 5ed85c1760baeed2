//! Alerts as the rules engine raises them, the store keeps them, the API serves them and the
//! notifications carry them: one record with typed fields on every side.

use crate::payload::Level;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};

/// How serious an alert is, from a note to a case for enforcement.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Violation,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// One step up (repeated offences); critical stays critical.
    pub fn escalated(self) -> Severity {
        match self {
            Severity::Info => Severity::Warning,
            Severity::Warning => Severity::Violation,
            _ => Severity::Critical,
        }
    }
}

/// Where an alert is in its life: raised, condition gone (re-check running), closed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertState {
    Active,
    Cleared,
    Closed,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What a rule judges (docs/rules.md describes each).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        s.parse().ok()
    }
}

/// What happened to an alert.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
    }
}

/// One alert: at most one open per (site, rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub opened_ts: EventTime,
    pub updated_ts: EventTime,
    pub cleared_ts: Option<EventTime>,
    pub closed_ts: Option<EventTime>,
    /// Times this alert's condition was raised (1 at open).
    pub offences: u32,
    /// City level when the alert opened.
    pub level: Level,
    /// What triggered it: readings, times, means, limits.
    pub evidence: serde_json::Value,
}

impl Alert {
    /// Open (active or cleared, not yet closed).
    pub fn is_open(&self) -> bool {
        self.state != AlertState::Closed
    }
}

/// One recorded change of an alert (its history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChange {
    pub alert_id: i64,
    pub change: Change,
    pub ts: EventTime,
    pub state: AlertState,
    pub severity: Severity,
    pub acknowledged: bool,
    pub evidence: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON the API, the MQTT alert topics and the notifications carry: the words and bare
    /// millisecond numbers they carried when these fields were strings and `i64`s.
    #[test]
    fn an_alert_serialises_as_the_contract_spells_it() {
        let a = Alert {
            id: 7,
            site: "s1".into(),
            rule: "pm10-hourly".into(),
            kind: RuleKind::Window,
            severity: Severity::Violation,
            state: AlertState::Cleared,
            acknowledged: true,
            ack_by: Some("li".into()),
            ack_comment: None,
            opened_ts: EventTime(1_483_203_599_999),
            updated_ts: EventTime(1_483_207_199_999),
            cleared_ts: Some(EventTime(1_483_207_199_999)),
            closed_ts: None,
            offences: 2,
            level: Level::Orange,
            evidence: serde_json::json!({"mean": 180.5}),
        };
        let text = serde_json::to_string(&a).expect("serialises");
        assert_eq!(
            text,
            r#"{"id":7,"site":"s1","rule":"pm10-hourly","kind":"window","severity":"violation","state":"cleared","acknowledged":true,"ack_by":"li","ack_comment":null,"opened_ts":1483203599999,"updated_ts":1483207199999,"cleared_ts":1483207199999,"closed_ts":null,"offences":2,"level":"orange","evidence":{"mean":180.5}}"#
        );
        assert_eq!(serde_json::from_str::<Alert>(&text).expect("parses"), a);
        let change = AlertChange {
            alert_id: 7,
            change: Change::Reactivated,
            ts: EventTime(5),
            state: AlertState::Active,
            severity: Severity::Critical,
            acknowledged: false,
            evidence: serde_json::Value::Null,
        };
        assert_eq!(
            serde_json::to_string(&change).expect("serialises"),
            r#"{"alert_id":7,"change":"reactivated","ts":5,"state":"active","severity":"critical","acknowledged":false,"evidence":null}"#
        );
    }
}
