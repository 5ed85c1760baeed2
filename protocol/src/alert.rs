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
