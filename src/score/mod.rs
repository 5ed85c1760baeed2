//! Scoring stored alerts against a simulator ground-truth file: precision and recall per rule
//! kind, and every false positive and false negative with site, rule and time.
//!
//! Behaviour kinds (restriction, sprinkling, noise, night, gaps, faults) are scored by overlap: a
//! truth record is found when an alert of the matching kind at the same site (and device, for
//! device faults) was open at some time within the record's window, widened by the judgement
//! delay of that kind; an alert is right when it overlaps a truth record it may report. Window
//! rules are scored window by window against what each rule decides on the air perfect sensors
//! would have measured ([`windows`]); a rule with a daily allowance is scored per local day.

pub mod windows;

#[cfg(test)]
mod tests;

use crate::rules::{Profile, RuleKind};
use crate::store::{Alert, AlertFilter, StoreError, StoreReader};
use chrono::{SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{Change, EventTime};
use sensors_sim::{Truth, TruthRecord};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use thiserror::Error;
use windows::WindowKey;

#[derive(Debug, Error)]
pub enum ScoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the truth file's timezone: {0}")]
    Timezone(#[from] dustwatch_protocol::ZoneError),
}

/// Which truth kinds each behaviour kind reports, and how late its judgement may come (ms): a
/// window is judged at its end plus the allowed lateness, a day at its close.
fn mapping(kind: RuleKind) -> (&'static [&'static str], i64) {
    match kind {
        RuleKind::Restriction => (
            &["work_during_restriction", "earthwork_during_restriction"],
            30 * MINUTE,
        ),
        RuleKind::Night => (&["night_work"], 30 * MINUTE),
        RuleKind::Noise => (&["noise_night"], 40 * MINUTE),
        RuleKind::Sprinkling => (&["too_few_sprinkling_runs"], 60 * MINUTE),
        RuleKind::Gap => (&["offline", "data_gap"], 30 * MINUTE),
        RuleKind::Fault => (&["sensor_stuck", "flagged_readings"], 60 * MINUTE),
        RuleKind::Window => (&[], 0),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KindScore {
    /// A rule kind, or `window/<rule id>` for one window rule.
    pub kind: String,
    /// What is counted: `record`, `window` or `day`.
    pub unit: String,
    pub truth: usize,
    pub found: usize,
    pub alerts: usize,
    pub right: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissKind {
    /// An alert (or an alert window) the truth does not support.
    FalsePositive,
    /// A truth record (or window) no alert reported.
    FalseNegative,
}

/// One wrong verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub miss: MissKind,
    pub kind: String,
    pub site: String,
    /// The alert's rule, or the truth record's kind.
    pub rule: String,
    /// Start of the alert, window, day or truth record (RFC 3339 UTC).
    pub time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    pub kinds: Vec<KindScore>,
    pub misses: Vec<Miss>,
    /// Alert windows the truth cannot speak for (the monitor was off or faulty, or the span
    /// ended): neither right nor wrong.
    pub unscored_windows: usize,
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// Alerts the truth file can speak to: night noise from night work (day-limit noise
/// exceedances are real GB 12523 findings it does not list), stuck sensors and flagged readings.
fn scored(kind: RuleKind, a: &Alert) -> bool {
    match kind {
        RuleKind::Noise => a.evidence.get("period").and_then(|p| p.as_str()) == Some("night"),
        RuleKind::Fault => a.rule.starts_with("stuck-") || a.rule.starts_with("flag-"),
        _ => true,
    }
}

/// Whether an alert may report a truth record (beyond the kind mapping).
fn reports(kind: RuleKind, a: &Alert, r: &TruthRecord) -> bool {
    let device_ok = match &r.device {
        Some(d) if matches!(kind, RuleKind::Gap | RuleKind::Fault) => {
            a.evidence.get("device").and_then(|v| v.as_str()) == Some(d.as_str())
        }
        _ => true,
    };
    let rule_ok = match r.kind.as_str() {
        "sensor_stuck" => a.rule.starts_with("stuck-"),
        "flagged_readings" => a.rule.starts_with("flag-"),
        _ => true,
    };
    a.site == r.site && device_ok && rule_ok
}

fn overlaps(a: &Alert, r: &TruthRecord, slack: i64, end_of_data: i64) -> bool {
    let opened = a.opened_ts.ms();
    let a_end = a
        .closed_ts
        .or(a.cleared_ts)
        .map_or(end_of_data, EventTime::ms)
        .max(opened);
    opened <= r.end_ms + slack && a_end >= r.start_ms
}

pub fn score(
    reader: &dyn StoreReader,
    truth: &Truth,
    profile: &Profile,
) -> Result<ScoreReport, ScoreError> {
    let tz: Tz = truth.timezone.parse::<dustwatch_protocol::Zone>()?.tz();
    let alerts = reader.alerts(&AlertFilter::default())?;
    let mut kinds = Vec::new();
    let mut misses = Vec::new();
    let mut unscored_windows = 0;
    // Flag runs shorter than the profile's threshold are not faults it reports.
    let min_flagged = profile
        .fault
        .as_ref()
        .map_or(u32::MAX, |f| f.flagged_readings);
    for kind in RuleKind::ALL {
        if kind == RuleKind::Window {
            unscored_windows = score_windows(reader, truth, profile, tz, &mut kinds, &mut misses)?;
            continue;
        }
        let (truth_kinds, slack) = mapping(kind);
        let records: Vec<&TruthRecord> = truth
            .records
            .iter()
            .filter(|r| truth_kinds.contains(&r.kind.as_str()))
            .filter(|r| r.kind != "flagged_readings" || r.readings.unwrap_or(0) >= min_flagged)
            .collect();
        let mine: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.kind == kind && scored(kind, a))
            .collect();
        let hit =
            |a: &Alert, r: &TruthRecord| reports(kind, a, r) && overlaps(a, r, slack, truth.end_ms);
        let mut found = 0;
        for r in &records {
            if mine.iter().any(|a| hit(a, r)) {
                found += 1;
            } else {
                misses.push(Miss {
                    miss: MissKind::FalseNegative,
                    kind: kind.name().to_string(),
                    site: r.site.clone(),
                    rule: r.kind.clone(),
                    time: r.start.clone(),
                });
            }
        }
        let mut right = 0;
        for a in &mine {
            if records.iter().any(|r| hit(a, r)) {
                right += 1;
            } else {
                misses.push(Miss {
                    miss: MissKind::FalsePositive,
                    kind: kind.name().to_string(),
                    site: a.site.clone(),
                    rule: a.rule.clone(),
                    time: rfc3339(a.opened_ts.ms()),
                });
            }
        }
        kinds.push(KindScore {
            kind: kind.name().to_string(),
            unit: "record".into(),
            truth: records.len(),
            found,
            alerts: mine.len(),
            right,
            precision: ratio(right, mine.len()),
            recall: ratio(found, records.len()),
        });
    }
    Ok(ScoreReport {
        kinds,
        misses,
        unscored_windows,
    })
}

/// Window rules: one row for all of them (per window), then one per rule (per window, or per
/// local day for a rule with a daily allowance). Returns the alert windows left unscored.
fn score_windows(
    reader: &dyn StoreReader,
    truth: &Truth,
    profile: &Profile,
    tz: Tz,
    kinds: &mut Vec<KindScore>,
    misses: &mut Vec<Miss>,
) -> Result<usize, ScoreError> {
    // A window is judged once the data has passed its end by the allowed lateness: windows
    // ending later than that before the span's end are never judged.
    let judged_to = truth.end_ms - profile.allowed_lateness_s * 1000;
    let verdicts = windows::truth_windows(profile, &truth.perfect, tz, judged_to);
    let judged = windows::alert_windows(reader, profile, verdicts.keys())?;
    let truth_set: BTreeSet<&WindowKey> = verdicts
        .iter()
        .filter(|(_, alert)| **alert)
        .map(|(k, _)| k)
        .collect();
    let row = |kind: String, unit: &str, t: &BTreeSet<WindowKey>, e: &BTreeSet<WindowKey>| {
        let right = e.intersection(t).count();
        KindScore {
            kind,
            unit: unit.into(),
            truth: t.len(),
            found: right,
            alerts: e.len(),
            right,
            precision: ratio(right, e.len()),
            recall: ratio(right, t.len()),
        }
    };
    // Each rule's unit: a window, or the local day (its start stands for the window start) for
    // a rule with a daily allowance.
    let per_day: BTreeMap<&str, i64> = profile
        .windows
        .iter()
        .filter(|r| r.daily_budget > 0)
        .map(|r| (r.id.as_str(), r.window_min * MINUTE))
        .collect();
    let unit_of = |k: &WindowKey| -> WindowKey {
        match per_day.get(k.1.as_str()) {
            Some(len) => (k.0.clone(), k.1.clone(), day_start(tz, k.2 + len - 1)),
            None => k.clone(),
        }
    };
    let all_t: BTreeSet<WindowKey> = truth_set.iter().map(|k| unit_of(k)).collect();
    let all_e: BTreeSet<WindowKey> = judged.iter().map(unit_of).collect();
    let unit = match (per_day.is_empty(), per_day.len() == profile.windows.len()) {
        (true, _) => "window",
        (false, true) => "day",
        (false, false) => "window or day",
    };
    kinds.push(row("window".into(), unit, &all_t, &all_e));
    for (k, miss) in all_e
        .difference(&all_t)
        .map(|k| (k, MissKind::FalsePositive))
        .chain(
            all_t
                .difference(&all_e)
                .map(|k| (k, MissKind::FalseNegative)),
        )
    {
        misses.push(Miss {
            miss,
            kind: "window".into(),
            site: k.0.clone(),
            rule: k.1.clone(),
            time: rfc3339(k.2),
        });
    }
    for rule in &profile.windows {
        let pick = |s: &BTreeSet<WindowKey>| -> BTreeSet<WindowKey> {
            s.iter().filter(|k| k.1 == rule.id).cloned().collect()
        };
        let unit = if rule.daily_budget > 0 {
            "day"
        } else {
            "window"
        };
        kinds.push(row(
            format!("window/{}", rule.id),
            unit,
            &pick(&all_t),
            &pick(&all_e),
        ));
    }
    Ok(unscored_windows(reader, profile, &verdicts)?)
}

/// Windows whose alert was raised where the truth cannot speak (monitor off or faulty).
fn unscored_windows(
    reader: &dyn StoreReader,
    profile: &Profile,
    verdicts: &BTreeMap<WindowKey, bool>,
) -> Result<usize, StoreError> {
    let rules: BTreeSet<&str> = profile.windows.iter().map(|r| r.id.as_str()).collect();
    let mut n = 0;
    for a in reader.alerts(&AlertFilter::default())? {
        if a.kind != RuleKind::Window || !rules.contains(a.rule.as_str()) {
            continue;
        }
        for c in reader.alert_history(a.id)? {
            let start = c.evidence.get("window_start").and_then(|v| v.as_i64());
            if matches!(c.change, Change::Opened | Change::Reactivated)
                && start
                    .is_some_and(|s| !verdicts.contains_key(&(a.site.clone(), a.rule.clone(), s)))
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Start (ms) of the local day holding `t`.
fn day_start(tz: Tz, t: i64) -> i64 {
    tz.timestamp_millis_opt(t)
        .single()
        .and_then(|d| {
            tz.from_local_datetime(&d.date_naive().and_time(chrono::NaiveTime::MIN))
                .earliest()
        })
        .map_or(t, |d| d.timestamp_millis())
}

fn cell(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |v| format!("{v:.2}"))
}

/// A Markdown table (the README's format), then every miss.
pub fn table(report: &ScoreReport) -> String {
    let mut s = String::from(
        "| rule kind | unit | truth | found | alerts | right | precision | recall |\n|---|---|---|---|---|---|---|---|\n",
    );
    for k in &report.kinds {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            k.kind,
            k.unit,
            k.truth,
            k.found,
            k.alerts,
            k.right,
            cell(k.precision),
            cell(k.recall)
        );
    }
    let _ = writeln!(
        s,
        "\nAlert windows the truth cannot speak for (monitor off or faulty): {}",
        report.unscored_windows
    );
    let mut by_kind: BTreeMap<&str, Vec<&Miss>> = BTreeMap::new();
    for m in &report.misses {
        by_kind.entry(m.kind.as_str()).or_default().push(m);
    }
    for (kind, ms) in by_kind {
        let _ = writeln!(s, "\n{kind}: {} wrong", ms.len());
        for m in ms {
            let what = match m.miss {
                MissKind::FalsePositive => "false positive",
                MissKind::FalseNegative => "false negative",
            };
            let _ = writeln!(s, "- {what}: {} {} at {}", m.site, m.rule, m.time);
        }
    }
    s
}
