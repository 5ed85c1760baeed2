//! Rule profiles: the office's rulebook as TOML. Every limit, window, level and time of day is a
//! setting here (docs/domain.md: none is a constant in code). `dustwatch rules check FILE`
//! validates a profile and reports each problem with its line and field.

use dustwatch_protocol::{Level, Metric, Phase, SiteKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use thiserror::Error;
use toml::Spanned;

fn d_lateness() -> i64 {
    300
}
fn d_backfill() -> i64 {
    6 * 3600
}
fn d_recheck() -> i64 {
    7200
}
fn d_escalate() -> u32 {
    2
}
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

/// A whole profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Event-time lateness allowed before a minute is judged, s. Default 300.
    #[serde(default = "d_lateness")]
    pub allowed_lateness_s: i64,
    /// A silent site is judged (as no data) once the fleet's event time is this far ahead; data
    /// backfilled later than that is stored but not judged again. Default 21600 (6 h).
    #[serde(default = "d_backfill")]
    pub max_backfill_s: i64,
    /// After the condition clears, an alert closes after this much clean data, s (the
    /// "rectify, then re-inspect" step). Default 7200.
    #[serde(default = "d_recheck")]
    pub recheck_s: i64,
    /// Every this many offences of the same alert raise its severity one step. Default 2.
    #[serde(default = "d_escalate")]
    pub escalate_after: u32,
    /// How work activity is inferred from noise and dust.
    pub activity: Spanned<Activity>,
    #[serde(default, rename = "window")]
    pub windows: Vec<Spanned<WindowRule>>,
    pub restriction: Option<Spanned<RestrictionRule>>,
    pub sprinkling: Option<Spanned<SprinklingRule>>,
    pub noise: Option<Spanned<NoiseRule>>,
    pub night: Option<Spanned<NightRule>>,
    pub gap: Option<Spanned<GapRule>>,
    pub fault: Option<Spanned<FaultRule>>,
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

/// Kind a: a windowed mean of one metric against a raise and a clear limit.
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

/// Kind b: work forbidden at a city level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictionRule {
    /// Earthwork is forbidden from this level up.
    pub earthwork_from: Level,
    /// All work is forbidden from this level up.
    pub all_work_from: Level,
    pub severity: Severity,
}

/// Kind c: too few sprinkling runs in a local day, judged when the day closes. A run is the
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

/// Kind d: GB 12523-2011 boundary noise, Leq over tumbling windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseRule {
    pub day_limit_dba: f64,
    pub night_limit_dba: f64,
    /// Local time the day limit starts, `HH:MM`.
    pub day_start: String,
    /// Local time the night limit starts, `HH:MM`.
    pub night_start: String,
    pub window_min: i64,
    /// The condition clears this many dB below the limit.
    pub hysteresis_db: f64,
    pub severity: Severity,
}

/// Kind e: the night-patrol window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightRule {
    /// `HH:MM` local; the window may run past midnight.
    pub start: String,
    pub end: String,
    pub severity: Severity,
}

/// Kind f: no data from a device (or for a metric) for `after_s` while event time moves on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapRule {
    pub after_s: i64,
    /// Metrics watched individually.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    pub severity: Severity,
}

/// Kind g: sensor faults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The same PM value this many readings in a row is a stuck sensor.
    pub stuck_readings: u32,
    /// This many readings in a row with a non-N flag on a PM metric is a fault.
    pub flagged_readings: u32,
    pub severity: Severity,
}

/// A problem in a profile, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: `{}`: {}", self.line, self.field, self.reason)
    }
}

#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:\n{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

/// `HH:MM` to minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<i64> {
    dustwatch_protocol::TimeOfDay::parse(s)
        .ok()
        .map(|t| i64::from(t.minutes()))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
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
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            ProfileError::Invalid {
                path: path.to_string(),
                problems: vec![Problem {
                    line,
                    field: "(syntax)".into(),
                    reason: e.message().to_string(),
                }],
            }
        })?;
        let problems = profile.validate(text);
        if problems.is_empty() {
            Ok(profile)
        } else {
            Err(ProfileError::Invalid {
                path: path.to_string(),
                problems,
            })
        }
    }

    fn validate(&self, text: &str) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |span: &std::ops::Range<usize>, field: &str, reason: String| {
            p.push(Problem {
                line: line_of(text, span.start),
                field: field.to_string(),
                reason,
            })
        };
        let a = &self.activity;
        if a.get_ref().window_min < 1 || a.get_ref().min_active_minutes > a.get_ref().window_min {
            bad(
                &a.span(),
                "activity.min_active_minutes",
                "must be at most activity.window_min (and the window at least 1 minute)".into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        for w in &self.windows {
            let r = w.get_ref();
            let s = w.span();
            if !ids.insert(r.id.clone()) {
                bad(&s, "window.id", format!("duplicate rule id `{}`", r.id));
            }
            if r.id.is_empty()
                || !r
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bad(&s, "window.id", format!("`{}` must be [a-z0-9-]+", r.id));
            }
            if ![5, 15, 60].contains(&r.window_min) {
                bad(
                    &s,
                    "window.window_min",
                    format!("{} is not one of 5, 15, 60", r.window_min),
                );
            }
            if r.clear > r.raise {
                bad(
                    &s,
                    "window.clear",
                    format!(
                        "clear {} is above raise {}: the alert could never clear",
                        r.clear, r.raise
                    ),
                );
            }
            if !(0.0..=1.0).contains(&r.min_coverage) {
                bad(&s, "window.min_coverage", "must be between 0 and 1".into());
            }
            if r.min_duration_min < 0 {
                bad(&s, "window.min_duration_min", "must not be negative".into());
            }
        }
        if let Some(n) = &self.noise {
            let r = n.get_ref();
            for (field, v) in [
                ("noise.day_start", &r.day_start),
                ("noise.night_start", &r.night_start),
            ] {
                if parse_hhmm(v).is_none() {
                    bad(&n.span(), field, format!("`{v}` is not HH:MM"));
                }
            }
            if r.window_min < 1 {
                bad(&n.span(), "noise.window_min", "must be at least 1".into());
            }
        }
        if let Some(n) = &self.night {
            for (field, v) in [
                ("night.start", &n.get_ref().start),
                ("night.end", &n.get_ref().end),
            ] {
                if parse_hhmm(v).is_none() {
                    bad(&n.span(), field, format!("`{v}` is not HH:MM"));
                }
            }
        }
        if let Some(r) = &self.restriction {
            if r.get_ref().all_work_from < r.get_ref().earthwork_from {
                bad(
                    &r.span(),
                    "restriction.all_work_from",
                    "stopping all work at a lower level than earthwork makes the earthwork level meaningless".into(),
                );
            }
        }
        if let Some(sp) = &self.sprinkling {
            let r = sp.get_ref();
            if r.min_run_s < 0 {
                bad(
                    &sp.span(),
                    "sprinkling.min_run_s",
                    "must not be negative".into(),
                );
            }
            if !(0.0..=24.0).contains(&r.min_data_hours) {
                bad(
                    &sp.span(),
                    "sprinkling.min_data_hours",
                    "must be between 0 and 24".into(),
                );
            }
        }
        if let Some(g) = &self.gap {
            if g.get_ref().after_s < 60 {
                bad(&g.span(), "gap.after_s", "must be at least 60".into());
            }
        }
        if self.recheck_s < 0 || self.allowed_lateness_s < 0 || self.max_backfill_s < 0 {
            p.push(Problem {
                line: 1,
                field: "recheck_s / allowed_lateness_s / max_backfill_s".into(),
                reason: "must not be negative".into(),
            });
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_are_valid() {
        let d = Profile::default_profile();
        assert!(!d.windows.is_empty());
        let hebei = include_str!("../../rules/hebei-db13-2934.toml");
        let h = Profile::parse(hebei, "hebei").expect("hebei profile is valid");
        let w = h.windows[0].get_ref();
        assert_eq!((w.window_min, w.raise, w.daily_budget), (60, 80.0, 2));
        assert_eq!(w.mode, Mode::Increment);
    }

    #[test]
    fn problems_name_line_and_field() {
        let text = Profile::default_profile_text().replacen("clear = 150.0", "clear = 999.0", 1);
        let err = Profile::parse(&text, "x.toml").expect_err("clear above raise");
        let ProfileError::Invalid { problems, .. } = err else {
            panic!("expected Invalid");
        };
        assert_eq!(problems[0].field, "window.clear");
        let line = text
            .lines()
            .position(|l| l.starts_with("[[window]]"))
            .expect("has a window")
            + 1;
        assert_eq!(problems[0].line, line);
        let err = Profile::parse("name = 3", "y.toml").expect_err("type error");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    impl Profile {
        fn default_profile_text() -> String {
            DEFAULT_PROFILE.to_string()
        }
    }
}
