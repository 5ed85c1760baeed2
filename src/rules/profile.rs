//! Rule profiles: the office's rulebook as TOML. Every limit, window, level and time of day is a
//! setting here (docs/domain.md: none is a constant in code). These are the plain types the
//! engine reads; `profile/file.rs` parses and validates the file (`dustwatch rules check FILE`
//! reports each problem with its line and field) and builds them once.

use super::time_of_day::DailyWindow;
use dustwatch_protocol::{Level, Metric, Phase, SiteKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

mod file;

pub use file::{Problem, ProfileError};

fn d_coverage() -> f64 {
    0.75
}
fn d_min_run() -> i64 {
    300
}
fn d_min_data_hours() -> f64 {
    12.0
}
fn d_earth_phases() -> Vec<Phase> {
    vec![Phase::Earthwork]
}
fn d_kinds() -> Vec<SiteKind> {
    vec![SiteKind::Construction, SiteKind::Road]
}

/// A whole profile, validated.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Event-time lateness allowed before a minute is judged, s. Default 300.
    pub allowed_lateness_s: i64,
    /// A silent site is judged (as no data) once the fleet's event time is this far ahead; data
    /// backfilled later than that is stored but not judged again. Default 21600 (6 h).
    pub max_backfill_s: i64,
    /// After the condition clears, an alert closes after this much clean data, s (the
    /// "rectify, then re-inspect" step). Default 7200.
    pub recheck_s: i64,
    /// Every this many offences of the same alert raise its severity one step. Default 2.
    pub escalate_after: u32,
    /// How work activity is inferred from noise and dust.
    pub activity: Activity,
    pub windows: Vec<WindowRule>,
    pub restriction: Option<RestrictionRule>,
    pub sprinkling: Option<SprinklingRule>,
    pub noise: Option<NoiseRule>,
    pub night: Option<NightRule>,
    pub gap: Option<GapRule>,
    pub fault: Option<FaultRule>,
}

/// Shared with the store and the API.
pub use dustwatch_protocol::Severity;

/// Work activity inferred per minute: noise at or above `noise_dba` (or, when set, a PM10
/// increment at or above `dust_pm10_increment`) is work; on a site in an earthwork phase, with a
/// PM10 increment over the reference at or above `earthwork_pm10_increment`, it is earthwork.
/// A sprinkling run is never work: during one, noise does not count (dust over these
/// thresholds still does).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    pub noise_dba: f64,
    /// A minute whose PM10 is at least this far over the reference is work too, noise or not (a
    /// dust burst from digging, loading, a truck). Default none: noise alone.
    #[serde(default)]
    pub dust_pm10_increment: Option<f64>,
    pub earthwork_pm10_increment: f64,
    /// Registry phases in which a site can do earthwork. Default `["earthwork"]`.
    #[serde(default = "d_earth_phases")]
    pub earthwork_phases: Vec<Phase>,
    /// Judged over tumbling windows of this many minutes.
    pub window_min: i64,
    /// Active minutes in a window that make the window active.
    pub min_active_minutes: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The site's own mean.
    Absolute,
    /// The site's mean minus its reference site's mean over the same minutes.
    Increment,
}

/// A windowed mean of one metric against a raise and a clear limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRule {
    /// Alert rule id, `[a-z0-9-]`, used in the alert topic.
    pub id: String,
    pub metric: Metric,
    /// Tumbling, clock-aligned windows of 5, 15 or 60 minutes.
    pub window_min: i64,
    pub mode: Mode,
    /// A window mean above this is an exceedance.
    pub raise: f64,
    /// The condition clears when a window mean falls below this (hysteresis).
    pub clear: f64,
    /// Per-phase raise limits overriding `raise` (construction sites).
    #[serde(default)]
    pub phase_raise: HashMap<Phase, f64>,
    /// Consecutive exceeding minutes before the condition counts. Default 0.
    #[serde(default)]
    pub min_duration_min: i64,
    /// Exceedances allowed per local day before an alert is raised. Default 0.
    #[serde(default)]
    pub daily_budget: u32,
    /// Fraction of the window's minutes that must have valid data to judge it. Default 0.75.
    #[serde(default = "d_coverage")]
    pub min_coverage: f64,
    /// Increment mode: the subtracted reference value is capped at this (Hebei caps at 150).
    #[serde(default)]
    pub reference_cap: Option<f64>,
    /// Increment mode: when the reference is missing or lags (too few reference minutes in the
    /// window) or the site has none, judge the site's own mean against this absolute limit
    /// instead. Default none: such windows are not judged (and the day's figures say so).
    #[serde(default)]
    pub fallback_raise: Option<f64>,
    /// Clear limit for the fallback. Default `fallback_raise`.
    #[serde(default)]
    pub fallback_clear: Option<f64>,
    /// Site kinds the rule applies to. Default construction and road.
    #[serde(default = "d_kinds")]
    pub kinds: Vec<SiteKind>,
    pub severity: Severity,
}

impl WindowRule {
    pub fn raise_for(&self, phase: Phase) -> f64 {
        self.phase_raise.get(&phase).copied().unwrap_or(self.raise)
    }
}

/// Work forbidden at a city level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictionRule {
    /// Earthwork is forbidden from this level up.
    pub earthwork_from: Level,
    /// All work is forbidden from this level up.
    pub all_work_from: Level,
    pub severity: Severity,
}

/// Too few sprinkling runs in a local day, judged when the day closes. A run is the
/// site's `sprinkler_on`..`sprinkler_off` time, merged across its devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprinklingRule {
    pub min_runs: u32,
    /// A run shorter than this does not count, s. Default 300.
    #[serde(default = "d_min_run")]
    pub min_run_s: i64,
    /// A day with fewer hours of valid PM data is not judged (the day's figures say so).
    /// Default 12.
    #[serde(default = "d_min_data_hours")]
    pub min_data_hours: f64,
    /// Judged on days when the city level reached at least this.
    pub from_level: Level,
    pub severity: Severity,
}

/// GB 12523-2011 boundary noise, Leq over tumbling windows.
#[derive(Debug, Clone)]
pub struct NoiseRule {
    pub day_limit_dba: f64,
    pub night_limit_dba: f64,
    /// The local hours of the day limit (from `day_start` to `night_start`); the night limit
    /// applies outside them.
    pub daytime: DailyWindow,
    pub window_min: i64,
    /// The condition clears this many dB below the limit.
    pub hysteresis_db: f64,
    pub severity: Severity,
}

/// Work in the night-patrol hours.
#[derive(Debug, Clone)]
pub struct NightRule {
    /// Local hours; the window may run past midnight.
    pub hours: DailyWindow,
    pub severity: Severity,
}

/// No data from a device (or for a metric) for `after_s` while event time moves on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapRule {
    pub after_s: i64,
    /// Metrics watched individually.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    pub severity: Severity,
}

/// Sensor faults: stuck values and flagged readings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The same PM value this many readings in a row is a stuck sensor.
    pub stuck_readings: u32,
    /// This many readings in a row with a non-N flag on a PM metric is a fault.
    pub flagged_readings: u32,
    pub severity: Severity,
}

/// The built-in default profile (rules/default.toml), so the binary works from any directory.
pub const DEFAULT_PROFILE: &str = include_str!("../../rules/default.toml");

impl Profile {
    /// The shipped default profile.
    pub fn default_profile() -> Profile {
        Profile::parse(DEFAULT_PROFILE, "rules/default.toml")
            .expect("the shipped default profile is valid (checked by a test)")
    }

    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Parse and validate; every problem found is reported with its line.
    pub fn parse(text: &str, path: &str) -> Result<Profile, ProfileError> {
        file::parse(text, path)
    }
}
