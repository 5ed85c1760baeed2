//! What bounds the store under hostile input: the fleet clock, retention's refusal to empty a
//! table, caps on sites, devices and dead letters. Real SQLite files.

use super::sqlite::StoreConfig;
use super::{AlertWriter, DeadLetter, Record, SqliteStore, StoreReader, StoreWriter};
use dustwatch_protocol::{EventTime, Reading, RejectReason, SiteInfo};

const T0: i64 = 1_483_228_800_000; // 2017-01-01
const DAY: i64 = 86_400_000;

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn reading(site: &str, device: &str, ts: i64) -> Record {
    Record::Reading {
        site: site.into(),
        device: device.into(),
        reading: Reading {
            ts: EventTime(ts),
            seq: (ts / 60_000) as u64,
            boot: 1,
            interval_s: 60,
            pm10: Some(80.0),
            ..Default::default()
        },
    }
}

fn registered(ids: &[&str]) -> Vec<SiteInfo> {
    ids.iter()
        .map(|id| SiteInfo::new(*id, *id, "test"))
        .collect()
}

/// Three registered sites reporting every hour for `days` days from T0.
fn three_sites(store: &mut SqliteStore, days: i64) {
    store
        .upsert_sites(&registered(&["a", "b", "c"]))
        .expect("sites");
    let batch: Vec<Record> = (0..days * 24)
        .flat_map(|h| ["a", "b", "c"].map(|s| reading(s, "m1", T0 + h * 3_600_000)))
        .collect();
    store.write_batch(&batch).expect("write");
}

#[test]
fn one_site_ahead_does_not_move_the_fleet_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    three_sites(&mut store, 2);
    let clock = store.fleet_clock().expect("clock");
    assert_eq!(clock, T0 + (2 * 24 - 1) * 3_600_000);
    // One registered site's device and one made-up site jump years ahead (within the wall
    // clock's bound, as a device set to the real date while the others replay 2017).
    let now = chrono::Utc::now().timestamp_millis();
    store
        .write_batch(&[reading("a", "m9", now), reading("zz", "x", now)])
        .expect("write");
    assert_eq!(
        store.fleet_clock(),
        Some(clock),
        "the majority did not move"
    );
    drop(store);
    let store = SqliteStore::open(config(dir.path()), false).expect("reopen");
    assert_eq!(
        store.fleet_clock(),
        Some(clock),
        "the same clock after a restart"
    );
}

#[test]
fn retention_refuses_to_empty_a_table_and_trims_what_is_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    three_sites(&mut store, 3);
    let reader = store.reader().expect("reader");
    let before = reader.counts().expect("counts").readings;
    assert_eq!(before, 3 * 3 * 24);

    // A clock in 2099 would delete everything: refused, per table, with the reason.
    let report = store.apply_retention(4_102_358_400_000).expect("pass");
    assert_eq!(report.deleted, 0);
    let tables: Vec<&str> = report.refused.iter().map(|r| r.table).collect();
    assert!(tables.contains(&"readings"), "{tables:?}");
    assert!(report.refused[0]
        .to_string()
        .contains("retention_max_share"));
    assert_eq!(reader.counts().expect("counts").readings, before);

    // 30 days after the second day ended: the first day (a third of the span) goes, and so
    // do export rows of what it held (an exporter down that long cannot send them).
    store.set_outbox(true);
    store
        .write_batch(&[reading("a", "m2", T0 + 3_600_000)])
        .expect("write");
    store
        .write_batch(&[reading("a", "m2", T0 + 2 * DAY + 3_600_000)])
        .expect("write");
    let outbox = |dir: &std::path::Path| -> i64 {
        let conn = rusqlite::Connection::open(super::sqlite::db_path(dir)).expect("sqlite");
        conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(outbox(dir.path()), 2);
    let report = store
        .apply_retention(T0 + 2 * DAY + 30 * DAY)
        .expect("pass");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    // The first two days of the three sites and m2's first reading went; m2's second stays.
    assert_eq!(
        reader.counts().expect("counts").readings,
        before - 2 * 3 * 24 + 1
    );
    assert_eq!(
        outbox(dir.path()),
        1,
        "the old export row went with its reading"
    );
}

#[test]
fn made_up_sites_and_devices_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(
        StoreConfig {
            max_unregistered_sites: 3,
            max_devices_per_site: 2,
            ..config(dir.path())
        },
        false,
    )
    .expect("open");
    let sites: Vec<Record> = (0..10)
        .map(|i| reading(&format!("fake{i}"), "d", T0))
        .collect();
    let out = store.write_batch(&sites).expect("write");
    assert_eq!(out.stored, 3);
    assert_eq!(out.rejected, vec![(RejectReason::UnknownSite, 7)]);
    let devices: Vec<Record> = (0..5)
        .map(|i| reading("fake0", &format!("dev{i}"), T0 + 60_000))
        .collect();
    let out = store.write_batch(&devices).expect("write");
    assert_eq!(out.stored, 1, "fake0 had one device; one more fits");
    assert_eq!(out.rejected, vec![(RejectReason::UnknownDevice, 4)]);
    let reader = store.reader().expect("reader");
    assert_eq!(reader.sites().expect("sites").len(), 3);
    assert_eq!(reader.counts().expect("counts").dead_letters, 11);
    drop(store);
    // The cap holds across a restart.
    let mut store = SqliteStore::open(
        StoreConfig {
            max_unregistered_sites: 3,
            ..config(dir.path())
        },
        false,
    )
    .expect("reopen");
    let out = store
        .write_batch(&[reading("fake99", "d", T0)])
        .expect("write");
    assert_eq!(out.rejected, vec![(RejectReason::UnknownSite, 1)]);
}

fn dead(topic: &str) -> Record {
    Record::DeadLetter(DeadLetter {
        topic: topic.into(),
        payload: b"{oops".to_vec(),
        reason: RejectReason::MalformedJson,
        detail: "test".into(),
    })
}

#[test]
fn dead_letters_are_capped_per_source_and_in_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(
        StoreConfig {
            max_dead_letters: 25,
            max_dead_letters_per_source: 10,
            ..config(dir.path())
        },
        false,
    )
    .expect("open");
    let reader = store.reader().expect("reader");
    let mut batch: Vec<Record> = (0..5).map(|_| dead("dust/v1/quiet/d/reading")).collect();
    batch.extend((0..30).map(|_| dead("dust/v1/noisy/d/reading")));
    store.write_batch(&batch).expect("write");
    assert_eq!(reader.counts().expect("counts").dead_letters, 15);
    // Another noisy source: the table stays at 25 and the quiet one keeps its 5.
    let batch: Vec<Record> = (0..30)
        .map(|_| dead("hj212-tcp://127.0.0.9:4000"))
        .collect();
    store.write_batch(&batch).expect("write");
    assert_eq!(reader.counts().expect("counts").dead_letters, 25);
    let conn = rusqlite::Connection::open(super::sqlite::db_path(dir.path())).expect("sqlite");
    let quiet: i64 = conn
        .query_row(
            "SELECT count(*) FROM dead_letters WHERE topic LIKE 'dust/v1/quiet/%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(quiet, 5);
}

#[test]
fn an_unregistered_site_whose_data_aged_out_is_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    three_sites(&mut store, 2);
    store
        .write_batch(&[reading("ghost", "d", T0)])
        .expect("write");
    let reader = store.reader().expect("reader");
    assert_eq!(reader.sites().expect("sites").len(), 4);
    store.apply_retention(T0 + DAY + 30 * DAY).expect("pass");
    let ids: Vec<String> = reader
        .sites()
        .expect("sites")
        .into_iter()
        .map(|s| s.info.id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(!ids.contains(&"ghost".to_string()));
}

#[test]
fn what_was_not_judged_survives_in_the_day_row_and_reaches_the_report() {
    use crate::rules::{DayStats, NotJudged, Reason};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    store.upsert_sites(&registered(&["a"])).expect("sites");
    let date = chrono::NaiveDate::from_ymd_opt(2017, 1, 2).expect("date");
    let day = DayStats {
        not_judged_minutes: 60,
        not_judged: vec![NotJudged {
            rule: "pm10-hourly".into(),
            minutes: 60,
            reason: Reason::NoReference,
            text: Reason::NoReference.to_string(),
        }],
        ..crate::rules::task::day_stats(&crate::rules::task::day_row(
            &DayStats {
                site: "a".into(),
                date,
                exceedance_minutes: 0,
                data_minutes: 1440,
                activity_minutes: 0,
                night_activity_minutes: 0,
                sprinkling_runs: 2,
                alerts_opened: 0,
                alerts_closed: 0,
                level_max: dustwatch_protocol::Level::None,
                not_judged_minutes: 0,
                not_judged: Vec::new(),
            },
            true,
        ))
    };
    let mut alerts = super::AlertStore::open(dir.path()).expect("alert store");
    alerts
        .save_days(&[crate::rules::task::day_row(&day, true)])
        .expect("save");
    // After a restart the engine gets the same figures back from the row.
    let reader = store.reader().expect("reader");
    let rows = reader.days(date, date).expect("days");
    let back = crate::rules::task::day_stats(&rows[0]);
    assert_eq!(back.not_judged, day.not_judged);
    // And a report built from the store alone says it.
    let report = crate::report::daily(&reader, date, chrono_tz::Asia::Shanghai).expect("report");
    let line = &report.streets[0].sites[0];
    assert_eq!(line.not_judged_minutes, 60);
    assert!(
        line.not_judged[0].contains("no reference station"),
        "{:?}",
        line.not_judged
    );
    assert!(
        !line.no_incident,
        "a day not wholly judged is not a zero line"
    );
    // A list the store cannot read is an error naming it, never a day that seems wholly judged.
    let raw = rusqlite::Connection::open(dir.path().join("dustwatch.db")).expect("raw");
    raw.execute("UPDATE daily_stats SET not_judged = 'garbled'", [])
        .expect("garble");
    let err = reader.days(date, date).expect_err("unreadable list");
    assert!(err.to_string().contains("garbled"), "{err}");
}
