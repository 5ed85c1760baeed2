//! The export loop against a recording sink: order, retries, cursor, pruning, resume.

use super::*;
use crate::store::sqlite::StoreConfig;
use crate::store::{Record, SqliteStore, StoreWriter};
use dustwatch_protocol::{CityLevel, Event, EventKind, Level, Reading};
use std::sync::atomic::AtomicUsize;

/// Records every accepted body; fails the first `fail_first` writes.
#[derive(Clone, Default)]
struct Recorder {
    bodies: Arc<Mutex<Vec<String>>>,
    attempts: Arc<AtomicUsize>,
    fail_first: usize,
}

impl LineSink for Recorder {
    fn write(&self, body: String) -> impl Future<Output = Result<(), SinkError>> + Send {
        let n = self.attempts.fetch_add(1, Relaxed);
        let fail = n < self.fail_first;
        let bodies = self.bodies.clone();
        async move {
            if fail {
                return Err(SinkError::Unavailable("connection refused".into()));
            }
            bodies.lock().unwrap_or_else(|p| p.into_inner()).push(body);
            Ok(())
        }
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }
}

fn pacing() -> Pacing {
    Pacing {
        batch_size: 7,
        flush_interval: Duration::from_millis(5),
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

fn readings(from: u64, to: u64) -> Vec<Record> {
    (from..to)
        .map(|seq| Record::Reading {
            site: "s1".into(),
            device: "d1".into(),
            reading: Reading {
                ts: 1_000_000 + seq as i64 * 60_000,
                seq,
                boot: 1,
                interval_s: 60,
                pm10: Some(seq as f64),
                ..Default::default()
            },
        })
        .collect()
}

async fn export_until(dir: &Path, sink: Recorder, want: usize) -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let source = OutboxSource::open(dir, CURSOR).expect("outbox opens");
    let task = tokio::spawn(run(
        sink.clone(),
        source,
        pacing(),
        metrics.clone(),
        shutdown.clone(),
    ));
    for _ in 0..2000 {
        if sink.lines().len() >= want && metrics.export_backlog.load(Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let a wrongly repeated batch show up before stopping.
    tokio::time::sleep(Duration::from_millis(30)).await;
    shutdown.cancel();
    task.await.expect("export loop ends");
    metrics
}

/// A fresh SQLite store in a temporary directory (the directory lives as long as the guard).
fn open_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let store = SqliteStore::open(config, false).expect("store");
    (dir, store)
}

fn outbox_rows(dir: &Path) -> i64 {
    let c = rusqlite::Connection::open(crate::store::sqlite::db_path(dir)).expect("db");
    c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_exported_once_in_order_across_failures_and_restarts() {
    let (dir, mut store) = open_store();
    store.set_outbox(true);
    let mut batch = readings(0, 20);
    batch.push(Record::Event {
        site: "s1".into(),
        device: "d1".into(),
        event: Event {
            ts: 1_000_001,
            seq: 1,
            boot: 1,
            kind: EventKind::SprinklerOn,
        },
    });
    batch.push(Record::CityLevel {
        level: CityLevel {
            level: Level::Orange,
            ts: 1_000_002,
        },
        source: "test".into(),
    });
    store.write_batch(&batch).expect("write");
    // Redelivered readings are duplicates: no outbox rows for them.
    store.write_batch(&readings(0, 5)).expect("write dups");

    let first = Recorder {
        fail_first: 3,
        ..Default::default()
    };
    let m = export_until(dir.path(), first.clone(), 22).await;
    let lines = first.lines();
    assert_eq!(lines.len(), 22, "{lines:#?}");
    for (i, l) in lines[..20].iter().enumerate() {
        assert!(
            l.starts_with("reading,device=d1,kind=construction,site=s1 "),
            "{l}"
        );
        assert!(l.contains(&format!(",seq={i}i ")), "order: {l}");
    }
    assert!(lines[20].starts_with("event,device=d1,event=sprinkler_on"));
    assert_eq!(lines[21], "city_level,level=orange code=3i 1000002");
    assert_eq!(m.export_errors.load(Relaxed), 3);
    assert_eq!(m.export_lines.load(Relaxed), 22);
    assert_eq!(outbox_rows(dir.path()), 0, "exported rows are pruned");

    // Restart: nothing is sent again; only what arrives later.
    store.write_batch(&readings(20, 30)).expect("write more");
    let second = Recorder::default();
    export_until(dir.path(), second.clone(), 10).await;
    let lines = second.lines();
    assert_eq!(lines.len(), 10, "{lines:#?}");
    assert!(lines[0].contains(",seq=20i "), "{}", lines[0]);
}

#[tokio::test]
async fn outbox_stays_empty_when_export_is_off() {
    let (dir, mut store) = open_store();
    store.write_batch(&readings(0, 10)).expect("write");
    assert_eq!(outbox_rows(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_transitions_are_exported_after_their_own_cursor() {
    let (dir, mut store) = open_store();
    store.set_outbox(true);
    store.write_batch(&readings(0, 3)).expect("write");
    let c = rusqlite::Connection::open(crate::store::sqlite::db_path(dir.path())).expect("db");
    let alert = |c: &rusqlite::Connection, change: &str, state: &str, ts: i64| {
        c.execute(
            "INSERT OR REPLACE INTO alerts (id, site, rule, kind, severity, state, acknowledged, \
             opened_ts, updated_ts, offences, level, evidence) \
             VALUES (7, 's1', 'pm10-hourly', 'window', 'violation', ?1, 0, 0, ?2, 1, 'red', '{}')",
            rusqlite::params![state, ts],
        )
        .expect("alert row");
        c.execute(
            "INSERT INTO alert_history (alert_id, change, ts, state, severity, acknowledged, \
             evidence, recorded_ms) VALUES (7, ?1, ?2, ?3, 'violation', 0, '{}', 0)",
            rusqlite::params![change, ts, state],
        )
        .expect("history row");
    };
    alert(&c, "opened", "active", 5_000_000);

    let first = Recorder::default();
    export_until(dir.path(), first.clone(), 4).await;
    let lines = first.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[3],
        "alert,change=opened,kind=construction,rule=pm10-hourly,severity=violation,site=s1,\
         state=active alert_id=7i,active=1i,severity_code=2i,acknowledged=0i 5000000"
    );

    alert(&c, "cleared", "cleared", 6_000_000);
    let second = Recorder::default();
    export_until(dir.path(), second.clone(), 1).await;
    let lines = second.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("alert,change=cleared"), "{}", lines[0]);
}
