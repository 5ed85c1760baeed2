//! The profile as written in its TOML file: parsed with the span of each table, validated with
//! every problem located (line and field), then built once into the plain types the engine
//! reads. Spans and `HH:MM` strings go no further than this file.

use super::{
    Activity, FaultRule, GapRule, NightRule, NoiseRule, Profile, RestrictionRule, Severity,
    SprinklingRule, WindowRule,
};
use crate::rules::time_of_day::{DailyWindow, TimeOfDay};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
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

/// A whole profile file; see `Profile` for what each setting means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "d_lateness")]
    allowed_lateness_s: i64,
    #[serde(default = "d_backfill")]
    max_backfill_s: i64,
    #[serde(default = "d_recheck")]
    recheck_s: i64,
    #[serde(default = "d_escalate")]
    escalate_after: u32,
    activity: Spanned<Activity>,
    #[serde(default, rename = "window")]
    windows: Vec<Spanned<WindowRule>>,
    restriction: Option<Spanned<RestrictionRule>>,
    sprinkling: Option<Spanned<SprinklingRule>>,
    noise: Option<Spanned<NoiseFile>>,
    night: Option<Spanned<NightFile>>,
    gap: Option<Spanned<GapRule>>,
    fault: Option<Spanned<FaultRule>>,
}

/// `[noise]` as written: its times of day as `HH:MM` text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseFile {
    day_limit_dba: f64,
    night_limit_dba: f64,
    /// Local time the day limit starts, `HH:MM`.
    day_start: String,
    /// Local time the night limit starts, `HH:MM`.
    night_start: String,
    window_min: i64,
    hysteresis_db: f64,
    severity: Severity,
}

/// `[night]` as written: `HH:MM` local; the window may run past midnight.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NightFile {
    start: String,
    end: String,
    severity: Severity,
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

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Problems found while checking a file, each at the line of the table it is in.
struct Problems<'t> {
    text: &'t str,
    found: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, span: &Range<usize>, field: &str, reason: String) {
        self.found.push(Problem {
            line: line_of(self.text, span.start),
            field: field.to_string(),
            reason,
        });
    }

    /// A time of day, or a problem saying it is not one.
    fn time_of_day(&mut self, span: &Range<usize>, field: &str, v: &str) -> Option<TimeOfDay> {
        let t = TimeOfDay::parse(v);
        if t.is_none() {
            self.add(span, field, format!("`{v}` is not HH:MM"));
        }
        t
    }
}

/// Parse and validate; every problem found is reported with its line.
pub(super) fn parse(text: &str, path: &str) -> Result<Profile, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| {
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
    let mut problems = Problems {
        text,
        found: Vec::new(),
    };
    let profile = file.build(&mut problems);
    match profile {
        Some(p) if problems.found.is_empty() => Ok(p),
        _ => Err(ProfileError::Invalid {
            path: path.to_string(),
            problems: problems.found,
        }),
    }
}

impl ProfileFile {
    /// Check every setting and build the profile; `None` (with the problems said) when a time of
    /// day cannot be read.
    fn build(self, p: &mut Problems<'_>) -> Option<Profile> {
        let a = self.activity.get_ref();
        if a.window_min < 1 || a.min_active_minutes > a.window_min {
            p.add(
                &self.activity.span(),
                "activity.min_active_minutes",
                "must be at most activity.window_min (and the window at least 1 minute)".into(),
            );
        }
        check_windows(&self.windows, p);
        let noise = self.noise.map(|n| {
            let s = n.span();
            let r = n.into_inner();
            let day_start = p.time_of_day(&s, "noise.day_start", &r.day_start);
            let night_start = p.time_of_day(&s, "noise.night_start", &r.night_start);
            if r.window_min < 1 {
                p.add(&s, "noise.window_min", "must be at least 1".into());
            }
            Some(NoiseRule {
                day_limit_dba: r.day_limit_dba,
                night_limit_dba: r.night_limit_dba,
                daytime: DailyWindow {
                    start: day_start?,
                    end: night_start?,
                },
                window_min: r.window_min,
                hysteresis_db: r.hysteresis_db,
                severity: r.severity,
            })
        });
        let night = self.night.map(|n| {
            let s = n.span();
            let r = n.into_inner();
            let start = p.time_of_day(&s, "night.start", &r.start);
            let end = p.time_of_day(&s, "night.end", &r.end);
            Some(NightRule {
                hours: DailyWindow {
                    start: start?,
                    end: end?,
                },
                severity: r.severity,
            })
        });
        if let Some(r) = &self.restriction {
            if r.get_ref().all_work_from < r.get_ref().earthwork_from {
                p.add(
                    &r.span(),
                    "restriction.all_work_from",
                    "stopping all work at a lower level than earthwork makes the earthwork level meaningless".into(),
                );
            }
        }
        if let Some(sp) = &self.sprinkling {
            let r = sp.get_ref();
            if r.min_run_s < 0 {
                p.add(
                    &sp.span(),
                    "sprinkling.min_run_s",
                    "must not be negative".into(),
                );
            }
            if !(0.0..=24.0).contains(&r.min_data_hours) {
                p.add(
                    &sp.span(),
                    "sprinkling.min_data_hours",
                    "must be between 0 and 24".into(),
                );
            }
        }
        if let Some(g) = &self.gap {
            if g.get_ref().after_s < 60 {
                p.add(&g.span(), "gap.after_s", "must be at least 60".into());
            }
        }
        if self.recheck_s < 0 || self.allowed_lateness_s < 0 || self.max_backfill_s < 0 {
            p.found.push(Problem {
                line: 1,
                field: "recheck_s / allowed_lateness_s / max_backfill_s".into(),
                reason: "must not be negative".into(),
            });
        }
        Some(Profile {
            name: self.name,
            description: self.description,
            allowed_lateness_s: self.allowed_lateness_s,
            max_backfill_s: self.max_backfill_s,
            recheck_s: self.recheck_s,
            escalate_after: self.escalate_after,
            activity: self.activity.into_inner(),
            windows: self.windows.into_iter().map(Spanned::into_inner).collect(),
            restriction: self.restriction.map(Spanned::into_inner),
            sprinkling: self.sprinkling.map(Spanned::into_inner),
            noise: match noise {
                Some(rule) => Some(rule?),
                None => None,
            },
            night: match night {
                Some(rule) => Some(rule?),
                None => None,
            },
            gap: self.gap.map(Spanned::into_inner),
            fault: self.fault.map(Spanned::into_inner),
        })
    }
}

fn check_windows(windows: &[Spanned<WindowRule>], p: &mut Problems<'_>) {
    let mut ids = std::collections::HashSet::new();
    for w in windows {
        let r = w.get_ref();
        let s = w.span();
        if !ids.insert(r.id.clone()) {
            p.add(&s, "window.id", format!("duplicate rule id `{}`", r.id));
        }
        if r.id.is_empty()
            || !r
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            p.add(&s, "window.id", format!("`{}` must be [a-z0-9-]+", r.id));
        }
        if ![5, 15, 60].contains(&r.window_min) {
            p.add(
                &s,
                "window.window_min",
                format!("{} is not one of 5, 15, 60", r.window_min),
            );
        }
        if r.clear > r.raise {
            p.add(
                &s,
                "window.clear",
                format!(
                    "clear {} is above raise {}: the alert could never clear",
                    r.clear, r.raise
                ),
            );
        }
        if !(0.0..=1.0).contains(&r.min_coverage) {
            p.add(&s, "window.min_coverage", "must be between 0 and 1".into());
        }
        if r.min_duration_min < 0 {
            p.add(&s, "window.min_duration_min", "must not be negative".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mode, DEFAULT_PROFILE};
    use super::*;

    #[test]
    fn shipped_profiles_are_valid() {
        let d = Profile::default_profile();
        assert!(!d.windows.is_empty());
        let hebei = include_str!("../../../rules/hebei-db13-2934.toml");
        let h = Profile::parse(hebei, "hebei").expect("hebei profile is valid");
        let w = &h.windows[0];
        assert_eq!((w.window_min, w.raise, w.daily_budget), (60, 80.0, 2));
        assert_eq!(w.mode, Mode::Increment);
    }

    #[test]
    fn problems_name_line_and_field() {
        let text = DEFAULT_PROFILE.replacen("clear = 150.0", "clear = 999.0", 1);
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

    #[test]
    fn times_of_day_are_read_at_load_and_a_bad_one_is_located() {
        let d = Profile::default_profile();
        let night = d.night.expect("the default profile has a night rule");
        assert!(night
            .hours
            .contains(TimeOfDay::parse("23:00").expect("valid")));
        let start = DEFAULT_PROFILE
            .lines()
            .find(|l| l.trim_start().starts_with("start") && l.contains(':'))
            .expect("the night rule's start")
            .to_string();
        // Whole lines: `night_start = ...` in `[noise]` holds the same text.
        let text = DEFAULT_PROFILE.replacen(&format!("\n{start}\n"), "\nstart = \"25:00\"\n", 1);
        let err = Profile::parse(&text, "z.toml").expect_err("25:00 is no time of day");
        let ProfileError::Invalid { problems, .. } = err else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "night.start");
        assert_eq!(problems[0].reason, "`25:00` is not HH:MM");
        let table = text
            .lines()
            .position(|l| l.starts_with("[night]"))
            .expect("has a night table")
            + 1;
        assert_eq!(problems[0].line, table);
    }
}
