//! What could not be judged, and why: a rule that stays silent for lack of data must say so,
//! or the office reads silence as compliance.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "because", rename_all = "snake_case")]
pub enum Reason {
    /// Too few minutes with valid data in the window or day.
    TooLittleData {
        data_minutes: u32,
        needed_minutes: u32,
    },
    /// An increment rule at a site with no reference station (none named, none registered).
    NoReference,
    /// The reference station's data does not cover the window (it lags or is missing).
    ReferenceMissing { reference: String },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TooLittleData {
                data_minutes,
                needed_minutes,
            } => write!(
                f,
                "too little data: {data_minutes} minutes with valid data, {needed_minutes} needed"
            ),
            Reason::NoReference => write!(f, "no reference station configured for this site"),
            Reason::ReferenceMissing { reference } => write!(
                f,
                "reference station {reference} has no data for the window (lagging or missing)"
            ),
        }
    }
}

/// One rule's unjudged time in a day, by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotJudged {
    pub rule: String,
    /// Minutes of windows not judged (a whole day for a per-day rule).
    pub minutes: u32,
    pub reason: Reason,
    /// The reason in words, for reports.
    pub text: String,
}

/// Add `minutes` not judged for `rule` because of `reason` (merged with the same rule and kind
/// of reason).
pub fn add(list: &mut Vec<NotJudged>, rule: &str, minutes: u32, reason: Reason) {
    let same = |n: &NotJudged| {
        n.rule == rule && std::mem::discriminant(&n.reason) == std::mem::discriminant(&reason)
    };
    if let Some(n) = list.iter_mut().find(|n| same(n)) {
        n.minutes += minutes;
        n.text = reason.to_string();
        n.reason = reason;
    } else {
        list.push(NotJudged {
            rule: rule.to_string(),
            minutes,
            text: reason.to_string(),
            reason,
        });
    }
}
