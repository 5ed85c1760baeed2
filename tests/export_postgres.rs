//! The InfluxDB exporter on the PostgreSQL store: every fresh reading, event, city level and
//! alert change leaves the outbox as one line, once, even when the sink fails at first; the
//! cursor survives a restart of the exporter. Runs when `DUSTWATCH_REQUIRE_POSTGRES` is set.

use dustwatch::export::{run, LineSink, Pacing, PgOutboxSource, SinkError, CURSOR};
use dustwatch::metrics::Metrics;
use dustwatch::store::config::Backend;
use dustwatch::store::{self, Alert, Record, StoreConfig};
use dustwatch_protocol::{CityLevel, Event, EventKind, EventTime, Level, Reading};
use dustwatch_testkit::Postgres;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_483_228_800_000;

#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<String>>>,
    attempts: Arc<AtomicUsize>,
}

impl LineSink for Recorder {
    fn write(&self, body: String) -> impl Future<Output = Result<(), SinkError>> + Send {
        // The first two writes fail, as an unreachable server would.
        let fail = self.attempts.fetch_add(1, Relaxed) < 2;
        let lines = self.lines.clone();
        async move {
            if fail {
                return Err(SinkError::Unavailable("connection refused".into()));
            }
            let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
            l.extend(body.lines().map(str::to_string));
            Ok(())
        }
    }
}

fn pacing() -> Pacing {
    Pacing {
        batch_size: 4,
        flush_interval: Duration::from_millis(5),
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

async fn export_until(url: &str, sink: &Recorder, want: usize) {
    let source = PgOutboxSource::open(url, CURSOR).expect("source");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        sink.clone(),
        source,
        pacing(),
        Arc::new(Metrics::default()),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.lines.lock().expect("lines").len() < want {
        assert!(
            Instant::now() < deadline,
            "export never reached {want} lines"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let a wrongly repeated batch show up before stopping.
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.cancel();
    task.await.expect("export loop ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_exported_once_from_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig {
        backend: Backend::Postgres,
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.postgres.url = pg.database();
    let url = config.postgres.url.clone();
    let write = move |batch: Vec<Record>, alert: Option<Alert>| {
        let config = config.clone();
        std::thread::spawn(move || {
            let mut st = store::open(&config, false, true, false).expect("store");
            st.writer.write_batch(&batch).expect("batch");
            if let Some(a) = alert {
                st.alerts
                    .apply(&[(dustwatch_protocol::Change::Opened, a)])
                    .expect("alert");
            }
        })
        .join()
        .expect("writer thread");
    };
    let mut batch: Vec<Record> = (1..=10u64)
        .map(|seq| Record::Reading {
            site: "s1".into(),
            device: "d1".into(),
            reading: Reading {
                ts: EventTime(T0 + seq as i64 * 60_000),
                seq,
                boot: 1,
                interval_s: 60,
                pm10: Some(seq as f64),
                ..Default::default()
            },
        })
        .collect();
    batch.push(Record::Event {
        site: "s1".into(),
        device: "d1".into(),
        event: Event {
            ts: EventTime(T0),
            seq: 99,
            boot: 1,
            kind: EventKind::SprinklerOn,
        },
    });
    batch.push(Record::CityLevel {
        level: CityLevel {
            level: Level::Yellow,
            ts: EventTime(T0),
        },
        source: "test".into(),
    });
    let alert = Alert {
        id: 1,
        site: "s1".into(),
        rule: "pm10-hour".into(),
        kind: dustwatch_protocol::RuleKind::Window,
        severity: dustwatch_protocol::Severity::Warning,
        state: dustwatch_protocol::AlertState::Active,
        acknowledged: false,
        ack_by: None,
        ack_comment: None,
        opened_ts: dustwatch_protocol::EventTime(T0),
        updated_ts: dustwatch_protocol::EventTime(T0),
        cleared_ts: None,
        closed_ts: None,
        offences: 1,
        level: Level::None,
        evidence: serde_json::json!({}),
    };
    // The batch twice: the redelivery adds nothing to export.
    write(batch.clone(), None);
    write(batch.clone(), Some(alert));

    // 10 readings, the event, the alert, and the city level twice (a city level is replaced
    // and announced again, as on SQLite).
    let sink = Recorder::default();
    export_until(&url, &sink, 14).await;
    let lines = sink.lines.lock().expect("lines").clone();
    assert_eq!(lines.len(), 14, "{lines:#?}");
    let mut unique: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("city_level"))
        .collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 12, "a line was exported twice: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("pm10=10")), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("site=s1")).count(),
        12,
        "{lines:#?}"
    );

    // A restarted exporter resumes after its cursor: only the new reading goes out.
    write(
        vec![Record::Reading {
            site: "s1".into(),
            device: "d1".into(),
            reading: Reading {
                ts: EventTime(T0 + 3_600_000),
                seq: 100,
                boot: 1,
                interval_s: 60,
                pm10: Some(77.0),
                ..Default::default()
            },
        }],
        None,
    );
    let again = Recorder::default();
    again.attempts.store(2, Relaxed);
    export_until(&url, &again, 1).await;
    let lines = again.lines.lock().expect("lines").clone();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("pm10=77"), "{}", lines[0]);
}
