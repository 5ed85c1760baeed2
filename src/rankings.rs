//! Rankings of sites and streets over local dates, with one definition for every place that
//! shows them (`/api/rankings`, the rankings page, the overview's street table): a site's score
//! is its minutes of pollution verdicts per day of data, that is window-rule exceedance minutes
//! (the day figures) plus minutes under a restriction alert, divided by the days on which it sent
//! data. A site that was offline half the period is neither favoured nor punished for it, and a
//! city-wide haze does not rank sites (exceedances are judged against the site's rule, increment
//! rules over the reference). Data-quality alerts (gaps, faults, flagged sensors) say nothing about
//! dust: they are counted apart and do not rank. A street's score is the mean over its sites, so
//! a street with many sites is not ranked first for its size.

use crate::rules::RuleKind;
use crate::store::{Alert, AlertFilter, StoreError, StoreReader};
use chrono::NaiveDate;
use chrono_tz::Tz;
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{EventTime, SiteKind, Zone};
use serde::Serialize;
use std::collections::BTreeMap;

/// Sites and streets ranked over local dates [from, to].
#[derive(Debug, Clone, Serialize)]
pub struct Rankings {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub sites: Vec<Rank>,
    pub streets: Vec<Rank>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Rank {
    pub rank: u32,
    pub id: String,
    pub name: String,
    pub street: String,
    /// Window-rule exceedance minutes (a street: summed over its sites).
    pub exceedance_minutes: u64,
    /// Minutes under a work or earthwork restriction alert (a street: summed).
    pub restriction_minutes: u64,
    /// Days with data (a street: summed over its sites).
    pub data_days: u32,
    /// The ranking score: (exceedance + restriction minutes) per day of data; a street: the mean
    /// of its sites' scores.
    pub minutes_per_day: f64,
    /// Pollution alerts opened (window, restriction, sprinkling, noise, night).
    pub alerts: u64,
    /// Data-quality alerts opened (gaps, faults, flagged sensors): reported, never ranked.
    pub quality_alerts: u64,
    pub sites: u32,
}

fn is_quality(a: &Alert) -> bool {
    matches!(a.kind, RuleKind::Gap | RuleKind::Fault)
}

/// Minutes of `[start, end)` a restriction alert covered: from the start of the window it was
/// raised on to its clear (or close, or the end of the period).
fn restriction_minutes(a: &Alert, start: EventTime, end: EventTime) -> u64 {
    let from = a
        .evidence
        .get("window_start")
        .and_then(|v| v.as_i64())
        .map_or(a.opened_ts, EventTime)
        .max(start);
    let to = a.cleared_ts.or(a.closed_ts).unwrap_or(end).min(end);
    u64::try_from((to - from).max(0) / MINUTE).unwrap_or(0)
}

pub fn rankings(
    reader: &dyn StoreReader,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<Rankings, StoreError> {
    let sites = reader.sites()?;
    let days = reader.days(from, to)?;
    let (start, _) = Zone::from(tz).day_bounds(from);
    let (_, end) = Zone::from(tz).day_bounds(to);
    let alerts = reader.alerts(&AlertFilter {
        from_ts: Some(start),
        to_ts: Some(end),
        ..Default::default()
    })?;
    let mut by_site: BTreeMap<String, Rank> = BTreeMap::new();
    for s in sites.iter().filter(|s| s.info.kind != SiteKind::Reference) {
        by_site.insert(
            s.info.id.clone(),
            Rank {
                id: s.info.id.clone(),
                name: s.info.name.clone(),
                street: s.info.street.clone(),
                sites: 1,
                ..Default::default()
            },
        );
    }
    for d in &days {
        if let Some(r) = by_site.get_mut(&d.site) {
            r.exceedance_minutes += u64::from(d.exceedance_minutes);
            if d.data_minutes > 0 {
                r.data_days += 1;
            }
        }
    }
    for a in &alerts {
        let Some(r) = by_site.get_mut(&a.site) else {
            continue;
        };
        if a.kind == RuleKind::Restriction {
            r.restriction_minutes += restriction_minutes(a, start, end);
        }
        if (start..end).contains(&a.opened_ts) {
            if is_quality(a) {
                r.quality_alerts += 1;
            } else {
                r.alerts += 1;
            }
        }
    }
    for r in by_site.values_mut() {
        r.minutes_per_day = per_day(r.exceedance_minutes + r.restriction_minutes, r.data_days);
    }
    let mut streets: BTreeMap<String, Rank> = BTreeMap::new();
    for r in by_site.values() {
        let s = streets.entry(r.street.clone()).or_insert_with(|| Rank {
            id: r.street.clone(),
            name: r.street.clone(),
            street: r.street.clone(),
            ..Default::default()
        });
        s.exceedance_minutes += r.exceedance_minutes;
        s.restriction_minutes += r.restriction_minutes;
        s.data_days += r.data_days;
        s.minutes_per_day += r.minutes_per_day;
        s.alerts += r.alerts;
        s.quality_alerts += r.quality_alerts;
        s.sites += 1;
    }
    for s in streets.values_mut() {
        s.minutes_per_day = round1(s.minutes_per_day / f64::from(s.sites.max(1)));
    }
    Ok(Rankings {
        from,
        to,
        sites: rank(by_site),
        streets: rank(streets),
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn per_day(minutes: u64, days: u32) -> f64 {
    if days == 0 {
        0.0
    } else {
        round1(minutes as f64 / f64::from(days))
    }
}

/// Highest score first; ties by pollution alerts, then by id (a stable order).
fn rank(v: BTreeMap<String, Rank>) -> Vec<Rank> {
    let mut v: Vec<Rank> = v.into_values().collect();
    v.sort_by(|a, b| {
        b.minutes_per_day
            .total_cmp(&a.minutes_per_day)
            .then(b.alerts.cmp(&a.alerts))
            .then(a.id.cmp(&b.id))
    });
    for (i, r) in v.iter_mut().enumerate() {
        r.rank = i as u32 + 1;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AlertStore, AlertWriter, DayRow, SqliteStore, StoreConfig, StoreWriter};
    use dustwatch_protocol::time::{HOUR, MINUTE};
    use dustwatch_protocol::{Change, SiteInfo};

    fn day(site: &str, date: &str, exceedance: u32, data: u32) -> DayRow {
        DayRow {
            site: site.into(),
            date: date.parse().expect("a date"),
            exceedance_minutes: exceedance,
            data_minutes: data,
            activity_minutes: 0,
            night_activity_minutes: 0,
            sprinkling_runs: 0,
            alerts_opened: 0,
            alerts_closed: 0,
            level_max: dustwatch_protocol::Level::None,
            closed: true,
            not_judged_minutes: 0,
            not_judged: Vec::new(),
        }
    }

    fn alert(id: i64, site: &str, kind: &str, from: i64, to: i64) -> (Change, Alert) {
        let row = Alert {
            id,
            site: site.into(),
            rule: format!("{kind}-rule"),
            kind: kind.parse().expect("a rule kind"),
            severity: dustwatch_protocol::Severity::Warning,
            state: dustwatch_protocol::AlertState::Cleared,
            acknowledged: false,
            ack_by: None,
            ack_comment: None,
            opened_ts: EventTime(from + 15 * MINUTE - 1),
            updated_ts: EventTime(to),
            cleared_ts: Some(EventTime(to)),
            closed_ts: None,
            offences: 1,
            level: dustwatch_protocol::Level::Red,
            evidence: serde_json::json!({"window_start": from}),
        };
        (Change::Opened, row)
    }

    #[test]
    fn one_score_per_day_of_data_streets_per_site_quality_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(
            StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            false,
        )
        .expect("open");
        let infos = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]
            .map(|(id, street)| SiteInfo::new(id, id, street));
        store.upsert_sites(&infos).expect("sites");
        let mut alerts = AlertStore::open(dir.path()).expect("alert store");
        // a1 exceeded 60 minutes on the one day it sent data (offline the next); b1 40 a day on
        // both; a3 30 a day; a2 worked 30 minutes under a restriction alert.
        alerts
            .save_days(&[
                day("a1", "2017-01-02", 60, 1440),
                day("a1", "2017-01-03", 0, 0),
                day("a2", "2017-01-02", 0, 1440),
                day("a2", "2017-01-03", 0, 1440),
                day("a3", "2017-01-02", 30, 1440),
                day("a3", "2017-01-03", 30, 1440),
                day("b1", "2017-01-02", 40, 1440),
                day("b1", "2017-01-03", 40, 1440),
            ])
            .expect("days");
        // 2017-01-02 10:00 local.
        let ten = 1_483_322_400_000;
        alerts
            .apply(&[
                alert(1, "a2", "restriction", ten, ten + 30 * MINUTE),
                // A data gap lowers nobody's rank: counted apart.
                alert(2, "b1", "gap", ten, ten + 5 * HOUR),
            ])
            .expect("alerts");
        let reader = store.reader().expect("reader");
        let date = |s: &str| s.parse::<NaiveDate>().expect("date");
        let r = rankings(
            &reader,
            date("2017-01-02"),
            date("2017-01-03"),
            chrono_tz::Asia::Shanghai,
        )
        .expect("rankings");
        let sites: Vec<(&str, f64)> = r
            .sites
            .iter()
            .map(|s| (s.id.as_str(), s.minutes_per_day))
            .collect();
        assert_eq!(
            sites,
            [("a1", 60.0), ("b1", 40.0), ("a3", 30.0), ("a2", 15.0)]
        );
        let b1 = r.sites.iter().find(|s| s.id == "b1").expect("b1");
        assert_eq!((b1.alerts, b1.quality_alerts), (0, 1));
        let a2 = r.sites.iter().find(|s| s.id == "a2").expect("a2");
        assert_eq!((a2.restriction_minutes, a2.alerts), (30, 1));
        // Street A has more minutes in all (150 a day over three sites) but fewer per site.
        let streets: Vec<(&str, f64)> = r
            .streets
            .iter()
            .map(|s| (s.id.as_str(), s.minutes_per_day))
            .collect();
        assert_eq!(streets, [("B", 40.0), ("A", 35.0)]);

        // The wall screen's ranking panel ranks by the same definition.
        use crate::charts::data::{ranking, Frame, Overlays, RankBy};
        let (from, _) = Zone::SHANGHAI.day_bounds(date("2017-01-02"));
        let (_, to) = Zone::SHANGHAI.day_bounds(date("2017-01-03"));
        let (from_ms, to_ms) = (from.ms(), to.ms());
        let panel = ranking(
            &reader,
            "wall",
            &infos,
            dustwatch_protocol::Metric::Pm10,
            RankBy::Verdicts,
            Frame {
                from_ms,
                to_ms,
                size: (900, 320),
            },
            &Overlays::default(),
        )
        .expect("panel");
        let entries: Vec<(&str, f64)> = panel
            .entries
            .iter()
            .map(|(l, v)| (l.as_str(), *v))
            .collect();
        assert_eq!(
            entries,
            [("a1", 60.0), ("b1", 40.0), ("a3", 30.0), ("a2", 15.0)]
        );
    }
}
