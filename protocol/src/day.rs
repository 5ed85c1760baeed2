//! One site's figures for one local day, as the rules close them, the store keeps them and the
//! daily report and rankings read them.

use crate::payload::Level;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

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
    /// What could not be judged and why, as the rules recorded it (JSON, opaque to the store).
    pub not_judged: String,
}
