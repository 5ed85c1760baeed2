//! The daily "zero report": for one local day and each street/town, every site with exceedance
//! minutes, alerts opened and closed, sprinkling runs and data completeness, with an explicit
//! "no incident" line where there was none. Also rankings over a period.

use crate::store::{AlertFilter, DayRow, SiteRow, StoreError, StoreReader};
use chrono::NaiveDate;
use chrono_tz::Tz;
use dustwatch_protocol::{Level, Zone};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

mod commands;
pub use commands::{add_commands, CommandCounts, CommandDay};

#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    pub date: NaiveDate,
    pub time_zone: String,
    /// False while the day is still open in event time (a preliminary report). `final` in JSON.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub streets: Vec<StreetReport>,
    /// Notices, orders, re-inspections and patrol results of the day, where the store has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<crate::store::acting::DaySummary>,
    /// Commands to devices that day, by kind (see `commands` for which day a command is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<CommandDay>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreetReport {
    pub street: String,
    pub sites_with_incidents: u32,
    pub sites: Vec<SiteLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteLine {
    pub site: String,
    pub name: String,
    pub kind: String,
    pub exceedance_minutes: u32,
    pub alerts_opened: u32,
    pub alerts_closed: u32,
    pub sprinkling_runs: u32,
    pub completeness_pct: f64,
    pub activity_minutes: u32,
    pub night_activity_minutes: u32,
    pub level_max: String,
    /// Rules whose alerts were open during the day.
    pub alerts: Vec<String>,
    /// True when nothing happened: the explicit zero line.
    pub no_incident: bool,
    /// Minutes of rule windows that could not be judged (no data, no or lagging reference).
    pub not_judged_minutes: u32,
    /// "not judged, because ..." per rule.
    pub not_judged: Vec<String>,
}

impl DailyReport {
    /// True when any site reported during the day. The rules close the day before a fleet's
    /// first reading too; a report of nothing is not published.
    pub fn has_data(&self) -> bool {
        self.streets
            .iter()
            .flat_map(|s| &s.sites)
            .any(|l| l.completeness_pct > 0.0)
    }
}

/// Build the report of `date` from the store.
pub fn daily(reader: &dyn StoreReader, date: NaiveDate, tz: Tz) -> Result<DailyReport, StoreError> {
    let days: BTreeMap<String, DayRow> = reader
        .days(date, date)?
        .into_iter()
        .map(|r| (r.site.clone(), r))
        .collect();
    let (from, to) = Zone::from(tz).day_bounds(date);
    let alerts = reader.alerts(&AlertFilter {
        from_ts: Some(from),
        to_ts: Some(to),
        ..Default::default()
    })?;
    let mut by_street: BTreeMap<String, Vec<SiteLine>> = BTreeMap::new();
    let sites: Vec<SiteRow> = reader.sites()?;
    for s in &sites {
        let day = days.get(&s.info.id);
        let mut rules: Vec<String> = alerts
            .iter()
            .filter(|a| a.site == s.info.id)
            .map(|a| format!("{} ({})", a.rule, a.severity))
            .collect();
        rules.dedup();
        let line = SiteLine {
            site: s.info.id.clone(),
            name: s.info.name.clone(),
            kind: s.info.kind.name().to_string(),
            exceedance_minutes: day.map_or(0, |d| d.exceedance_minutes),
            alerts_opened: day.map_or(0, |d| d.alerts_opened),
            alerts_closed: day.map_or(0, |d| d.alerts_closed),
            sprinkling_runs: day.map_or(0, |d| d.sprinkling_runs),
            completeness_pct: day.map_or(0.0, |d| {
                (f64::from(d.data_minutes) / 1440.0 * 1000.0).round() / 10.0
            }),
            activity_minutes: day.map_or(0, |d| d.activity_minutes),
            night_activity_minutes: day.map_or(0, |d| d.night_activity_minutes),
            level_max: day.map_or(Level::None, |d| d.level_max).name().to_string(),
            not_judged_minutes: day.map_or(0, |d| d.not_judged_minutes),
            not_judged: day.map_or_else(Vec::new, |d| not_judged_lines(&d.not_judged)),
            // A day whose figures count an alert is never a zero line, even if the alert's row
            // was not found (one source of truth would be better; both are checked).
            // Nor is a day the rules could not wholly judge: silence is not compliance.
            no_incident: rules.is_empty()
                && day.is_none_or(|d| {
                    d.exceedance_minutes == 0 && d.alerts_opened == 0 && d.not_judged_minutes == 0
                }),
            alerts: rules,
        };
        let street = if s.info.street.is_empty() {
            "(unregistered)".to_string()
        } else {
            s.info.street.clone()
        };
        by_street.entry(street).or_default().push(line);
    }
    let is_final = !days.is_empty() && days.values().all(|d| d.closed);
    Ok(DailyReport {
        date,
        time_zone: tz.name().to_string(),
        is_final,
        streets: by_street
            .into_iter()
            .map(|(street, sites)| StreetReport {
                sites_with_incidents: sites.iter().filter(|s| !s.no_incident).count() as u32,
                street,
                sites,
            })
            .collect(),
        actions: None,
        commands: None,
    })
}

/// Add the office's actions of the day (notices, orders, re-inspections, patrol) to a report.
pub fn add_actions(
    report: &mut DailyReport,
    store: &crate::store::acting::ActingStore,
    tz: Tz,
) -> Result<(), crate::store::acting::ActingError> {
    let (from, to) = Zone::from(tz).day_bounds(report.date);
    let (from, to) = (from.ms(), to.ms());
    report.actions = Some(store.day_summary(from, to, &report.date.to_string())?);
    Ok(())
}

/// Add what the rules could not judge (from the rules engine's day figures) to a report: a site
/// whose PM10 was not judged must not read as a clean zero line.
pub fn add_not_judged(report: &mut DailyReport, days: &[crate::rules::DayStats]) {
    for st in &mut report.streets {
        for line in &mut st.sites {
            let Some(d) = days
                .iter()
                .find(|d| d.date == report.date && d.site == line.site)
            else {
                continue;
            };
            line.not_judged_minutes = d.not_judged_minutes;
            line.not_judged = not_judged_lines(&d.not_judged);
            line.no_incident &= d.not_judged_minutes == 0;
        }
    }
}

/// What was not judged, one line per rule and reason, for the report.
fn not_judged_lines(list: &[crate::rules::NotJudged]) -> Vec<String> {
    list.iter()
        .map(|n| {
            format!(
                "{}: not judged for {} min, because {}",
                n.rule, n.minutes, n.text
            )
        })
        .collect()
}

pub fn to_csv(r: &DailyReport) -> String {
    let mut out = String::from(
        "date,street,site,name,kind,exceedance_minutes,alerts_opened,alerts_closed,sprinkling_runs,\
         completeness_pct,activity_minutes,night_activity_minutes,level_max,no_incident,alerts\n",
    );
    for st in &r.streets {
        for s in &st.sites {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.date,
                csv(&st.street),
                csv(&s.site),
                csv(&s.name),
                s.kind,
                s.exceedance_minutes,
                s.alerts_opened,
                s.alerts_closed,
                s.sprinkling_runs,
                s.completeness_pct,
                s.activity_minutes,
                s.night_activity_minutes,
                s.level_max,
                s.no_incident,
                csv(&s.alerts.join("; "))
            );
        }
    }
    out
}

/// Quote a CSV field; neutralise leading formula characters (spreadsheet injection).
pub fn csv(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Rankings have one definition, in their own module.
pub use crate::rankings::{rankings, Rank, Rankings};

#[cfg(test)]
mod tests {
    /// A store in a temporary directory with one registered site, `a`.
    fn store_with_one_site() -> (tempfile::TempDir, crate::store::SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::SqliteStore::open(
            crate::store::StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            false,
        )
        .expect("open");
        crate::store::StoreWriter::upsert_sites(
            &mut store,
            &[dustwatch_protocol::SiteInfo::new("a", "a", "test")],
        )
        .expect("sites");
        (dir, store)
    }

    #[test]
    fn the_report_says_final_in_json() {
        let (_dir, store) = store_with_one_site();
        let reader = store.reader().expect("reader");
        let date = chrono::NaiveDate::from_ymd_opt(2017, 1, 2).expect("date");
        let report =
            crate::report::daily(&reader, date, chrono_tz::Asia::Shanghai).expect("report");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["final"], false, "{json}");
        assert!(json.get("final_").is_none());
    }

    #[test]
    fn a_day_before_the_first_reading_has_no_data_to_report() {
        let (dir, store) = store_with_one_site();
        use crate::store::AlertWriter;
        let mut days = crate::store::AlertStore::open(dir.path()).expect("alert store");
        let row = |date: &str, data_minutes| crate::store::DayRow {
            site: "a".into(),
            date: date.parse().expect("a date"),
            exceedance_minutes: 0,
            data_minutes,
            activity_minutes: 0,
            night_activity_minutes: 0,
            sprinkling_runs: 0,
            alerts_opened: 0,
            alerts_closed: 0,
            level_max: dustwatch_protocol::Level::None,
            closed: true,
            not_judged_minutes: 0,
            not_judged: Vec::new(),
        };
        days.save_days(&[row("2017-01-01", 0), row("2017-01-02", 30)])
            .expect("days");
        let reader = store.reader().expect("reader");
        let report = |d| {
            let date = chrono::NaiveDate::from_ymd_opt(2017, 1, d).expect("date");
            crate::report::daily(&reader, date, chrono_tz::Asia::Shanghai).expect("report")
        };
        assert!(!report(1).has_data(), "a day the rules closed without data");
        assert!(report(2).has_data(), "30 minutes of data");
        assert!(!report(3).has_data(), "a day without a row");
    }
}
