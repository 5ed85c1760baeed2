//! The store's behaviour, the same test bodies against SQLite and PostgreSQL (a real server
//! from testkit, when `DUSTWATCH_REQUIRE_POSTGRES` is set): deduplication, batch atomicity,
//! series from rollups and raw readings, events/status/city levels, alerts and their history,
//! days, the outbox; and, PostgreSQL only, fencing by lease revision and one instance seeing
//! what another wrote.

use dustwatch::store::config::Backend;
use dustwatch::store::notify_outbox::NotifyChange;
use dustwatch::store::{
    self, Alert, AlertFilter, DayRow, Fence, OpenStore, Record, StateFilter, StoreConfig,
    StoreError,
};
use dustwatch_protocol::{
    AlertState, Change, CityLevel, Event, EventKind, EventTime, Flag, Level, Metric, Reading,
    RuleKind, Severity, Status, StatusState,
};
use dustwatch_testkit::Postgres;
use std::time::{Duration, Instant};

const T0: i64 = 1_483_228_800_000; // 2017-01-01 00:00 UTC
const MIN: i64 = 60_000;

/// One store under test: its configuration and what keeps it alive.
struct Under {
    name: &'static str,
    config: StoreConfig,
    _dir: tempfile::TempDir,
}

impl Under {
    fn open(&self) -> OpenStore {
        store::open(&self.config, false, false, false).expect("store opens")
    }

    fn open_with_outbox(&self) -> OpenStore {
        store::open(&self.config, false, true, false).expect("store opens")
    }

    /// Outbox rows, read past the store (its traits do not expose the outbox).
    fn outbox_rows(&self) -> i64 {
        match self.config.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(self.config.data_dir.join("dustwatch.db"))
                    .expect("open sqlite");
                conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                    .expect("count outbox")
            }
            Backend::Postgres => {
                let mut c = postgres::Client::connect(&self.config.postgres.url, postgres::NoTls)
                    .expect("connect");
                c.query_one("SELECT count(*) FROM outbox", &[])
                    .expect("count outbox")
                    .get(0)
            }
        }
    }
}

/// SQLite always; PostgreSQL on a database of its own when the server runs.
fn stores(pg: Option<&Postgres>) -> Vec<Under> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut out = vec![Under {
        name: "sqlite",
        config: StoreConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        },
        _dir: dir,
    }];
    if let Some(pg) = pg {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = StoreConfig {
            backend: Backend::Postgres,
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        config.postgres.url = pg.database();
        config.postgres.refresh_s = 1;
        out.push(Under {
            name: "postgres",
            config,
            _dir: dir,
        });
    }
    out
}

fn reading(site: &str, device: &str, minute: i64, seq: u64, pm25: f64) -> Record {
    Record::Reading {
        site: site.into(),
        device: device.into(),
        reading: Reading {
            ts: EventTime(T0 + minute * MIN),
            seq,
            boot: 1,
            interval_s: 60,
            pm25: Some(pm25),
            pm10: Some(pm25 * 2.0),
            noise_dba: Some(55.0),
            ..Default::default()
        },
    }
}

#[test]
fn a_reading_is_stored_once_however_often_it_comes() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        let batch = vec![
            reading("s1", "d1", 1, 1, 10.0),
            reading("s1", "d1", 2, 2, 20.0),
            reading("s1", "d1", 1, 1, 10.0),
        ];
        let out = st.writer.write_batch(&batch).expect("batch");
        assert_eq!((out.stored, out.duplicates), (2, 1), "{}", s.name);
        assert_eq!(out.fresh, vec![true, true, false], "{}", s.name);
        let again = st.writer.write_batch(&batch).expect("batch again");
        assert_eq!((again.stored, again.duplicates), (0, 3), "{}", s.name);
        assert_eq!(again.fresh, vec![false; 3], "{}", s.name);
        assert_eq!(
            st.reader.counts().expect("counts").readings,
            2,
            "{}",
            s.name
        );
        let rows = st
            .reader
            .readings("s1", T0, T0 + 10 * MIN)
            .expect("readings");
        let got: Vec<(String, u64, Option<f64>)> =
            rows.into_iter().map(|(d, r)| (d, r.seq, r.pm25)).collect();
        assert_eq!(
            got,
            vec![("d1".into(), 1, Some(10.0)), ("d1".into(), 2, Some(20.0))],
            "{}",
            s.name
        );
        // The writer's hot copy has the newest reading.
        let latest = st.reader.hot().latest("s1").expect("latest");
        assert_eq!(latest.reading.seq, 2, "{}", s.name);
        drop(st);
        // And a restart finds everything again.
        let st = s.open();
        assert_eq!(st.reader.hot().latest("s1").map(|l| l.reading.seq), Some(2));
        assert_eq!(st.reader.counts().expect("counts").sites, 1, "{}", s.name);
    }
}

#[test]
fn a_failing_batch_writes_nothing() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        st.writer
            .write_batch(&[reading("s1", "d1", 1, 1, 10.0)])
            .expect("first batch");
        // A sequence number past i64 cannot be stored: the batch fails after its first record
        // created a site and stored a reading, and all of it rolls back.
        let bad = vec![
            reading("s9", "d9", 2, 1, 10.0),
            reading("s1", "d1", 3, u64::MAX, 30.0),
        ];
        let err = st.writer.write_batch(&bad).expect_err("batch must fail");
        assert!(!err.is_transient(), "{}: {err}", s.name);
        let counts = st.reader.counts().expect("counts");
        assert_eq!((counts.readings, counts.sites), (1, 1), "{}", s.name);
        // The writer forgot the rolled-back site: the next batch registers it again.
        let out = st
            .writer
            .write_batch(&[reading("s9", "d9", 2, 1, 10.0)])
            .expect("batch after the failure");
        assert_eq!(out.stored, 1, "{}", s.name);
        let sites: Vec<String> = st
            .reader
            .sites()
            .expect("sites")
            .into_iter()
            .map(|r| r.info.id)
            .collect();
        assert_eq!(sites.len(), 2, "{}: {sites:?}", s.name);
        assert!(sites.contains(&"s9".to_string()), "{}", s.name);
    }
}

#[test]
fn series_come_from_rollups_and_raw_readings_alike() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        // Two hours, one reading a minute, pm25 = the minute number; split over two batches so
        // the rollups merge.
        let all: Vec<Record> = (1..=120)
            .map(|m| reading("s2", "d1", m, m as u64, m as f64))
            .collect();
        st.writer.write_batch(&all[..70]).expect("batch 1");
        st.writer.write_batch(&all[70..]).expect("batch 2");
        // A value flagged as an instrument fault does not count.
        let mut bad = Reading {
            ts: EventTime(T0 + 30 * MIN + 1),
            seq: 999,
            boot: 1,
            interval_s: 60,
            pm25: Some(10_000.0),
            ..Default::default()
        };
        bad.flags.insert("pm25".into(), Flag::D);
        let out = st
            .writer
            .write_batch(&[Record::Reading {
                site: "s2".into(),
                device: "d2".into(),
                reading: bad,
            }])
            .expect("flagged");
        assert_eq!(out.stored, 1, "{}", s.name);

        let hours = st
            .reader
            .series("s2", Metric::Pm25, T0, T0 + 120 * MIN, 3600)
            .expect("hourly");
        // Bucket b holds readings ending in (b, b + 1 h]: minutes 1..=60 and 61..=120.
        let got: Vec<(i64, f64, f64, f64, u64)> = hours
            .iter()
            .map(|p| (p.ts, p.mean, p.min, p.max, p.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (T0, 30.5, 1.0, 60.0, 60),
                (T0 + 60 * MIN, 90.5, 61.0, 120.0, 60)
            ],
            "{}",
            s.name
        );
        let minutes = st
            .reader
            .series("s2", Metric::Pm25, T0, T0 + 10 * MIN, 60)
            .expect("minutes");
        assert_eq!(minutes.len(), 10, "{}", s.name);
        assert_eq!(minutes[0].mean, 1.0, "{}", s.name);
        // Sub-minute steps read raw readings, skipping the flagged value.
        let raw = st
            .reader
            .series("s2", Metric::Pm25, T0 + 29 * MIN, T0 + 32 * MIN, 30)
            .expect("raw");
        assert!(raw.iter().all(|p| p.max < 1000.0), "{}: {raw:?}", s.name);
        assert_eq!(raw.iter().map(|p| p.count).sum::<u64>(), 3, "{}", s.name);
        assert!(matches!(
            st.reader.series("s2", Metric::Pm25, T0, T0 + MIN, 0),
            Err(StoreError::BadStep(0))
        ));
    }
}

#[test]
fn events_statuses_and_city_levels() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        let event = Record::Event {
            site: "s1".into(),
            device: "d1".into(),
            event: Event {
                ts: EventTime(T0 + MIN),
                seq: 5,
                boot: 1,
                kind: EventKind::SprinklerOn,
            },
        };
        let status = Record::Status {
            site: "s1".into(),
            device: "d1".into(),
            status: Status {
                state: StatusState::Online,
                fw: Some("1.2.3".into()),
                boot: Some(1),
                interval_s: Some(60),
                ts: None,
            },
        };
        let level = Record::CityLevel {
            level: CityLevel {
                level: Level::Orange,
                ts: EventTime(T0),
            },
            source: "test".into(),
        };
        let out = st
            .writer
            .write_batch(&[event.clone(), status.clone(), level, event])
            .expect("batch");
        assert_eq!((out.other, out.duplicates), (3, 1), "{}", s.name);
        let events = st.reader.events("s1", T0, T0 + 2 * MIN).expect("events");
        assert_eq!(events.len(), 1, "{}", s.name);
        assert_eq!(events[0].1.kind, EventKind::SprinklerOn, "{}", s.name);
        let devices = st.reader.devices(Some("s1")).expect("devices");
        assert_eq!(devices.len(), 1, "{}", s.name);
        assert_eq!(devices[0].state.as_deref(), Some("online"), "{}", s.name);
        assert_eq!(devices[0].fw.as_deref(), Some("1.2.3"), "{}", s.name);
        assert!(devices[0].last_seen_ms.is_some(), "{}", s.name);
        let levels = st.reader.city_levels().expect("levels");
        assert_eq!(
            levels,
            vec![CityLevel {
                level: Level::Orange,
                ts: EventTime(T0)
            }],
            "{}",
            s.name
        );
    }
}

fn alert(id: i64, state: AlertState, offences: u32) -> Alert {
    Alert {
        id,
        site: "s1".into(),
        rule: "pm10-hour".into(),
        kind: RuleKind::Window,
        severity: Severity::Warning,
        state,
        acknowledged: false,
        ack_by: None,
        ack_comment: None,
        opened_ts: EventTime(T0),
        updated_ts: EventTime(T0 + i64::from(offences) * MIN),
        cleared_ts: None,
        closed_ts: (state == AlertState::Closed).then_some(EventTime(T0 + 90 * MIN)),
        offences,
        level: Level::None,
        evidence: serde_json::json!({ "mean": 180.5 }),
    }
}

fn date(month: u32, day: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2017, month, day).expect("a date in 2017")
}

fn day(closed: bool, minutes: u32) -> DayRow {
    DayRow {
        site: "s1".into(),
        date: date(1, 1),
        exceedance_minutes: minutes,
        data_minutes: 1440,
        activity_minutes: 600,
        night_activity_minutes: 0,
        sprinkling_runs: 3,
        alerts_opened: 1,
        alerts_closed: 1,
        level_max: Level::Orange,
        closed,
        not_judged_minutes: 0,
        not_judged: Vec::new(),
    }
}

#[test]
fn alerts_their_history_and_days() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        st.alerts
            .apply(&[(Change::Opened, alert(1, AlertState::Active, 1))])
            .expect("opened");
        st.alerts
            .apply(&[(Change::Updated, alert(1, AlertState::Active, 2))])
            .expect("updated");
        let (open, _, max_id) = st.alerts.load().expect("load");
        assert_eq!((open.len(), max_id), (1, 1), "{}", s.name);
        assert_eq!(open[0].offences, 2, "{}", s.name);
        assert_eq!(open[0].evidence["mean"], 180.5, "{}", s.name);
        st.alerts
            .apply(&[
                (Change::Closed, alert(1, AlertState::Closed, 3)),
                (Change::Opened, alert(2, AlertState::Active, 1)),
            ])
            .expect("closed");
        let (open, history, max_id) = st.alerts.load().expect("load");
        assert_eq!(
            open.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![2],
            "{}",
            s.name
        );
        assert_eq!(
            history,
            vec![("s1".into(), "pm10-hour".into(), 3)],
            "{}",
            s.name
        );
        assert_eq!(max_id, 2, "{}", s.name);
        // "updated" is not a recorded change.
        let changes: Vec<Change> = st
            .reader
            .alert_history(1)
            .expect("history")
            .into_iter()
            .map(|c| c.change)
            .collect();
        assert_eq!(changes, vec![Change::Opened, Change::Closed], "{}", s.name);
        let closed = st
            .reader
            .alerts(&AlertFilter {
                state: Some(StateFilter::Closed),
                site: Some("s1".into()),
                ..Default::default()
            })
            .expect("alerts");
        assert_eq!(closed.len(), 1, "{}", s.name);
        assert_eq!(closed[0], alert(1, AlertState::Closed, 3), "{}", s.name);
        let all = st.reader.alerts(&AlertFilter::default()).expect("all");
        assert_eq!(all.len(), 2, "{}", s.name);
        let limited = st
            .reader
            .alerts(&AlertFilter {
                limit: Some(1),
                ..Default::default()
            })
            .expect("limited");
        assert_eq!(limited.len(), 1, "{}", s.name);

        st.alerts.save_days(&[day(false, 10)]).expect("open day");
        st.alerts.save_days(&[day(true, 42)]).expect("closed day");
        let days = st.reader.days(date(1, 1), date(1, 31)).expect("days");
        assert_eq!(days, vec![day(true, 42)], "{}", s.name);
        assert!(st
            .reader
            .days(date(2, 1), date(2, 28))
            .expect("none")
            .is_empty());
    }
}

#[test]
fn the_outbox_has_each_fresh_record_once() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open_with_outbox();
        let batch = vec![
            reading("s1", "d1", 1, 1, 10.0),
            reading("s1", "d1", 1, 1, 10.0),
            reading("s1", "d1", 2, 2, 10.0),
            Record::Event {
                site: "s1".into(),
                device: "d1".into(),
                event: Event {
                    ts: EventTime(T0),
                    seq: 3,
                    boot: 1,
                    kind: EventKind::CoverOn,
                },
            },
            Record::CityLevel {
                level: CityLevel {
                    level: Level::Red,
                    ts: EventTime(T0),
                },
                source: "test".into(),
            },
        ];
        st.writer.write_batch(&batch).expect("batch");
        assert_eq!(s.outbox_rows(), 4, "{}", s.name);
        // A redelivery is not fresh; a city level is replaced, and announced again.
        st.writer.write_batch(&batch[..4]).expect("again");
        assert_eq!(s.outbox_rows(), 4, "{}", s.name);
    }
}

fn fenced_batch(site: &str) -> Vec<Record> {
    (1..=3)
        .map(|m| reading(site, "d1", m, m as u64, 5.0))
        .collect()
}

#[test]
fn postgres_refuses_an_owner_whose_lease_moved_on() {
    let Some(pg) = Postgres::start() else { return };
    let s = stores(Some(&pg)).pop().expect("postgres store");
    let mut old_owner = s.open();
    let mut new_owner = s.open();
    let p0 = |revision| Fence {
        partition: 0,
        revision,
    };
    old_owner
        .writer
        .write_batch_fenced(&fenced_batch("a"), p0(1))
        .expect("the first owner writes");
    new_owner
        .writer
        .write_batch_fenced(&fenced_batch("b"), p0(2))
        .expect("the new owner writes");
    let err = old_owner
        .writer
        .write_batch_fenced(&fenced_batch("c"), p0(1))
        .expect_err("the old owner is fenced off");
    assert!(
        matches!(
            err,
            StoreError::Fenced {
                partition: 0,
                revision: 1,
                current: 2
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());
    // Nothing of the refused batch: no readings, not even its site.
    let reader = &new_owner.reader;
    assert!(reader
        .readings("c", T0, T0 + 10 * MIN)
        .expect("readings")
        .is_empty());
    assert!(!reader
        .sites()
        .expect("sites")
        .iter()
        .any(|r| r.info.id == "c"));
    assert_eq!(reader.counts().expect("counts").readings, 6);
    // The same revision again is its owner's next batch; other partitions are independent.
    new_owner
        .writer
        .write_batch_fenced(&fenced_batch("d"), p0(2))
        .expect("same revision");
    old_owner
        .writer
        .write_batch_fenced(
            &fenced_batch("e"),
            Fence {
                partition: 1,
                revision: 1,
            },
        )
        .expect("another partition");
    // The old owner, after a fresh lease (higher revision), writes again.
    old_owner
        .writer
        .write_batch_fenced(&fenced_batch("c"), p0(3))
        .expect("a newer lease");
    assert!(new_owner
        .writer
        .write_batch_fenced(&fenced_batch("f"), p0(2))
        .is_err());
    assert_eq!(reader.counts().expect("counts").readings, 15);
}

#[test]
fn postgres_fencing_is_race_free() {
    let Some(pg) = Postgres::start() else { return };
    let s = stores(Some(&pg)).pop().expect("postgres store");
    // Many owners of one partition at once, each with its own revision: whatever the
    // interleaving, no batch is stored after a newer revision's, and the newest always wins.
    let stores: Vec<OpenStore> = (0..6).map(|_| s.open()).collect();
    let results: Vec<(u64, Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(i, mut st)| {
                scope.spawn(move || {
                    let revision = i as u64 + 1;
                    let mut outcomes = Vec::new();
                    for round in 0..20 {
                        let site = format!("r{revision}x{round}");
                        let fence = Fence {
                            partition: 7,
                            revision,
                        };
                        let r = st.writer.write_batch_fenced(&fenced_batch(&site), fence);
                        outcomes.push((revision, r.map(|_| ()).map_err(|e| e.to_string())));
                    }
                    outcomes
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer thread"))
            .collect()
    });
    let newest_ok = results
        .iter()
        .filter(|(rev, r)| *rev == 6 && r.is_ok())
        .count();
    assert_eq!(newest_ok, 20, "the newest revision is never refused");
    let mut c =
        postgres::Client::connect(&s.config.postgres.url, postgres::NoTls).expect("connect");
    let stored: i64 = c
        .query_one(
            "SELECT revision FROM partition_fences WHERE partition = 7",
            &[],
        )
        .expect("fence row")
        .get(0);
    assert_eq!(stored, 6);
    // Every refused batch left nothing; every accepted one is complete.
    let accepted = results.iter().filter(|(_, r)| r.is_ok()).count() as i64;
    let readings: i64 = c
        .query_one("SELECT count(*) FROM readings", &[])
        .expect("count")
        .get(0);
    assert_eq!(readings, accepted * 3);
}

#[test]
fn postgres_instances_see_each_others_newest_readings() {
    let Some(pg) = Postgres::start() else { return };
    let s = stores(Some(&pg)).pop().expect("postgres store");
    let mut one = s.open();
    let other = s.open();
    one.writer
        .write_batch(&[reading("s1", "d1", 5, 5, 42.0)])
        .expect("batch");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = other.reader.hot().latest("s1") {
            assert_eq!(l.reading.pm25, Some(42.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never saw the reading"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(other.reader.hot().fleet_clock(), Some(T0 + 5 * MIN));
}

#[test]
fn postgres_writer_survives_a_server_restart() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let s = stores(Some(&pg)).pop().expect("postgres store");
    let mut st = s.open();
    st.writer
        .write_batch(&[reading("s1", "d1", 1, 1, 1.0)])
        .expect("before");
    pg.stop();
    let err = st
        .writer
        .write_batch(&[reading("s1", "d1", 2, 2, 2.0)])
        .expect_err("no server");
    assert!(err.is_transient(), "a lost server is worth retrying: {err}");
    pg.restart();
    // The caller retries the same batch (as ingest does) until the server takes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        match st.writer.write_batch(&[reading("s1", "d1", 2, 2, 2.0)]) {
            Ok(out) => break out,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(Instant::now() < deadline, "never reconnected: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(out.stored, 1);
    assert_eq!(st.reader.counts().expect("counts").readings, 2);
}

#[test]
fn refused_sites_and_devices_become_dead_letters() {
    let pg = Postgres::start();
    for mut s in stores(pg.as_ref()) {
        s.config.max_devices_per_site = 2;
        s.config.max_dead_letters_per_source = 3;
        let mut st = store::open(&s.config, true, false, false).expect("strict store");
        st.writer
            .upsert_sites(&[dustwatch_protocol::SiteInfo::new("s1", "Site 1", "street")])
            .expect("registry");
        let out = st
            .writer
            .write_batch(&[
                reading("s1", "d1", 1, 1, 1.0),
                reading("s1", "d2", 1, 1, 1.0),
                // A third device is over the cap; an unregistered site is refused (strict).
                reading("s1", "d3", 1, 1, 1.0),
                reading("nobody", "d1", 1, 1, 1.0),
            ])
            .expect("batch");
        assert_eq!(out.stored, 2, "{}", s.name);
        assert_eq!(out.fresh, vec![true, true, false, false], "{}", s.name);
        let mut rejected = out.rejected.clone();
        rejected.sort();
        assert_eq!(
            rejected,
            vec![
                (dustwatch_protocol::RejectReason::UnknownSite, 1),
                (dustwatch_protocol::RejectReason::UnknownDevice, 1)
            ],
            "{}",
            s.name
        );
        // One noisy source keeps at most its cap of dead letters.
        for seq in 2..10 {
            st.writer
                .write_batch(&[reading("nobody", "d1", seq, seq as u64, 1.0)])
                .expect("batch");
        }
        let counts = st.reader.counts().expect("counts");
        assert_eq!((counts.readings, counts.sites), (2, 1), "{}", s.name);
        assert_eq!(counts.dead_letters, 1 + 3, "{}", s.name);
    }
}

#[test]
fn retention_deletes_old_readings_and_refuses_to_empty_a_table() {
    const DAY: i64 = 86_400_000;
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        st.writer
            .upsert_sites(&[dustwatch_protocol::SiteInfo::new("s1", "Site 1", "street")])
            .expect("registry");
        // One reading a day for 40 days at a registered site; an unregistered one with a
        // single reading 35 days old.
        let mut batch: Vec<Record> = (0..40)
            .map(|d| reading("s1", "d1", d * 1440 + 1, d as u64 + 1, 1.0))
            .collect();
        batch.push(reading("stray", "d1", 5 * 1440, 1, 1.0));
        st.writer.write_batch(&batch).expect("batch");
        let now = T0 + 40 * DAY;
        assert_eq!(
            st.writer.fleet_clock(),
            Some(T0 + 39 * DAY + MIN),
            "{}",
            s.name
        );
        // A clock far ahead would delete everything: refused, nothing deleted.
        let report = st
            .writer
            .apply_retention(now + 365 * DAY)
            .expect("retention");
        assert!(
            report.refused.iter().any(|r| r.table == "readings"),
            "{}: {report:?}",
            s.name
        );
        assert_eq!(
            st.reader.counts().expect("counts").readings,
            40,
            "{}",
            s.name
        );
        // At the real clock, the readings older than 30 days go.
        let report = st.writer.apply_retention(now).expect("retention");
        assert!(report.refused.is_empty(), "{}: {report:?}", s.name);
        assert_eq!(
            st.reader.counts().expect("counts").readings,
            30,
            "{}",
            s.name
        );
        let oldest = st.reader.readings("s1", T0, now).expect("readings")[0]
            .1
            .ts
            .ms();
        assert!(oldest >= now - 30 * DAY, "{}", s.name);
    }
}

fn command_reply(id: &str) -> Record {
    Record::CommandReply {
        site: "s1".into(),
        device: "d1".into(),
        reply: dustwatch_protocol::CommandReply {
            id: dustwatch_protocol::CommandId::try_from(id.to_string()).expect("valid id"),
            ok: true,
            detail: "done".into(),
            ts: None,
        },
    }
}

#[test]
fn device_replies_answer_their_command_once_and_strays_become_dead_letters() {
    use dustwatch::store::commands::{CommandState, NewCommand};
    use dustwatch_protocol::RejectReason;
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        let log = store::open_commands(&s.config).expect("command log");
        let cmd = serde_json::json!({"cmd": "reboot"});
        log.insert(&NewCommand {
            id: "c1",
            site: "s1",
            device: "d1",
            command: &cmd,
            by: "li",
            sent_ms: 1_000,
            deadline_ms: 2_000,
            office_ts: 1_000,
        })
        .expect("insert");
        // Timed out first, answered late: the answer is still recorded.
        assert_eq!(log.expire(5_000).expect("expire"), 1, "{}", s.name);
        let out = st
            .writer
            .write_batch(&[command_reply("c1")])
            .expect("write");
        assert_eq!(out.fresh, vec![true], "{}", s.name);
        let row = log.get("c1").expect("get").expect("stored");
        assert_eq!(
            (row.state, row.ok, row.by.as_str()),
            (CommandState::Answered, Some(true), "li"),
            "{}",
            s.name
        );
        let out = st
            .writer
            .write_batch(&[command_reply("c1"), command_reply("nope")])
            .expect("write");
        assert_eq!(out.duplicates, 1, "{}", s.name);
        assert_eq!(
            out.rejected,
            vec![(RejectReason::StoreRefused, 1)],
            "{}",
            s.name
        );
        assert_eq!(log.list("s1", 10).expect("list").len(), 1, "{}", s.name);
    }
}

#[test]
fn each_alert_change_enters_the_notification_outbox_once() {
    let pg = Postgres::start();
    for s in stores(pg.as_ref()) {
        let mut st = s.open();
        let queue = store::open_notify_queue(&s.config).expect("outbox");
        let opened = alert(1, AlertState::Active, 1);
        let mut escalated = opened.clone();
        escalated.severity = Severity::Critical;
        let mut evidence = escalated.clone();
        evidence.offences = 2;
        st.alerts
            .apply(&[
                (Change::Opened, opened),
                (Change::Updated, escalated),
                (Change::Updated, evidence),
            ])
            .expect("apply");
        let changes: Vec<NotifyChange> = queue
            .unrouted(10)
            .expect("unrouted")
            .into_iter()
            .map(|r| r.change)
            .collect();
        assert_eq!(
            changes,
            [NotifyChange::Opened, NotifyChange::Escalated],
            "{}",
            s.name
        );
    }
}
