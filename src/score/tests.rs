//! Scoring window rules against a truth file, through a real store.

use super::*;
use crate::store::{AlertStore, AlertWriter, SqliteStore, StoreConfig, StoreWriter};
use dustwatch_protocol::time::HOUR as H;
use dustwatch_protocol::{AlertState, Phase, SiteInfo, SiteKind};
use sensors_sim::truth::PerfectSeries;

// 2017-01-02T00:00:00+08:00
const DAY1: i64 = 1_483_286_400_000;

fn series(site: &str, kind: SiteKind, pm10: Vec<Option<f64>>) -> PerfectSeries {
    PerfectSeries {
        site: site.into(),
        kind,
        phase: Phase::Structure,
        reference: (kind == SiteKind::Construction).then(|| "ref".to_string()),
        start_ms: DAY1,
        pm25: vec![None; pm10.len()],
        tsp: vec![None; pm10.len()],
        pm10,
    }
}

fn row(state: AlertState, ts: i64, opened: i64, cleared: Option<i64>) -> Alert {
    Alert {
        id: 1,
        site: "s1".into(),
        rule: "pm10-hourly".into(),
        kind: RuleKind::Window,
        severity: dustwatch_protocol::Severity::Violation,
        state,
        acknowledged: false,
        ack_by: None,
        ack_comment: None,
        opened_ts: EventTime(opened),
        updated_ts: EventTime(ts),
        cleared_ts: cleared.map(EventTime),
        closed_ts: None,
        offences: 1,
        level: dustwatch_protocol::Level::None,
        evidence: serde_json::json!({"window_start": DAY1, "window_end": DAY1 + H}),
    }
}

#[test]
fn window_verdicts_are_scored_window_by_window_and_misses_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(
        StoreConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        },
        false,
    )
    .expect("open");
    let mut s1 = SiteInfo::new("s1", "s1", "street");
    s1.reference = Some("ref".into());
    store.upsert_sites(&[s1]).expect("sites");
    // Perfect sensors: +200 over the reference in hours 0 and 2, +50 in hour 1.
    let site: Vec<Option<f64>> = (0..180)
        .map(|m| Some(if (60..120).contains(&m) { 150.0 } else { 300.0 }))
        .collect();
    let truth = Truth {
        scenario: "test".into(),
        seed: 1,
        timezone: "Asia/Shanghai".into(),
        start: String::new(),
        end: String::new(),
        start_ms: DAY1,
        end_ms: DAY1 + 3 * H + 5 * 60_000,
        records: Vec::new(),
        perfect: vec![
            series("s1", SiteKind::Construction, site),
            series("ref", SiteKind::Reference, vec![Some(100.0); 180]),
        ],
    };
    // The aggregator raised hour 0, cleared at the end of hour 1, and missed hour 2.
    let mut alerts = AlertStore::open(dir.path()).expect("alert store");
    alerts
        .apply(&[
            (
                Change::Opened,
                row(AlertState::Active, DAY1 + H - 1, DAY1 + H - 1, None),
            ),
            (
                Change::Cleared,
                row(
                    AlertState::Cleared,
                    DAY1 + 2 * H - 1,
                    DAY1 + H - 1,
                    Some(DAY1 + 2 * H - 1),
                ),
            ),
        ])
        .expect("alerts");
    let reader = store.reader().expect("reader");
    let report = score(&reader, &truth, &Profile::default_profile()).expect("scores");
    let window = report
        .kinds
        .iter()
        .find(|k| k.kind == "window/pm10-hourly")
        .expect("a row per window rule");
    assert_eq!(
        (window.truth, window.alerts, window.right),
        (2, 1, 1),
        "{window:?}"
    );
    assert_eq!((window.precision, window.recall), (Some(1.0), Some(0.5)));
    let misses: Vec<(MissKind, &str, &str)> = report
        .misses
        .iter()
        .filter(|m| m.kind == "window")
        .map(|m| (m.miss, m.rule.as_str(), m.time.as_str()))
        .collect();
    assert_eq!(
        misses,
        [(
            MissKind::FalseNegative,
            "pm10-hourly",
            "2017-01-01T18:00:00Z"
        )]
    );
    assert!(table(&report).contains("false negative: s1 pm10-hourly at 2017-01-01T18:00:00Z"));
}
