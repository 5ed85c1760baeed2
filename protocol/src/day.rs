//! One site's figures for one local day, as the rules close them, the store keeps them and the
//! daily report and rankings read them.

use crate::payload::Level;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    pub site: String,
    /// The local day, in the office's zone.
    pub date: NaiveDate,
    pub exceedance_minutes: u32,
    pub data_minutes: u32,
    pub activity_minutes: u32,
    pub night_activity_minutes: u32,
    pub sprinkling_runs: u32,
    pub alerts_opened: u32,
    pub alerts_closed: u32,
    pub level_max: Level,
    /// False while the day is still open in event time.
    pub closed: bool,
    /// Minutes of windows the rules could not judge.
    pub not_judged_minutes: u32,
    /// What could not be judged and why (the stores keep it as JSON text).
    pub not_judged: Vec<NotJudged>,
}

/// Why a rule could not judge: a rule that stays silent for lack of data must say so, or the
/// office reads silence as compliance.
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
