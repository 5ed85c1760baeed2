//! The store writer against a real SQLite store: what no single record may do to it.

use super::writer::{run, Ack, Item, WriterOptions};
use crate::metrics::Metrics;
use crate::store::sqlite::StoreConfig;
use crate::store::{Record, SqliteStore, StoreReader, StoreWriter};
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{EventTime, Reading, RejectReason, TopicRoot};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_483_228_800_000;

fn reading(device: usize, seq: u64) -> Record {
    Record::Reading {
        site: "s1".into(),
        device: format!("d{device}"),
        reading: Reading {
            ts: EventTime(T0) + (seq % 1_000_000) as i64 * MINUTE,
            seq,
            boot: 1,
            interval_s: 60,
            pm10: Some(80.0),
            ..Default::default()
        },
    }
}

fn item(record: Record, pkid: u16) -> Item {
    Item {
        record: Some(record),
        ack: Some(Ack {
            generation: 1,
            pkid,
        }),
        on_commit: None,
        received: Instant::now(),
    }
}

struct Running {
    items: mpsc::Sender<Item>,
    acks: mpsc::UnboundedReceiver<Vec<Ack>>,
    fresh: Arc<Mutex<Vec<Record>>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<()>,
    reader: crate::store::SqliteReader,
}

fn start(config: StoreConfig) -> Running {
    let store = SqliteStore::open(config, false).expect("open store");
    let reader = store.reader().expect("reader");
    let (items, rx) = mpsc::channel(10_000);
    let (ack_tx, acks) = mpsc::unbounded_channel();
    let fresh = Arc::new(Mutex::new(Vec::new()));
    let sink_fresh = fresh.clone();
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let options = WriterOptions {
        batch_max: 5_000,
        max_future_ms: 300_000,
        root: TopicRoot::default(),
    };
    let (m, s) = (metrics.clone(), shutdown.clone());
    let thread = std::thread::spawn(move || {
        run(
            Box::new(store) as Box<dyn StoreWriter>,
            rx,
            ack_tx,
            Some(Box::new(move |records| {
                sink_fresh.lock().expect("lock").extend(records)
            })),
            m,
            options,
            s,
        )
    });
    Running {
        items,
        acks,
        fresh,
        metrics,
        shutdown,
        thread,
        reader,
    }
}

/// Acknowledged packet ids, waiting at most 30 s for `n` of them.
fn acked(r: &mut Running, n: usize) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        match r.acks.try_recv() {
            Ok(acks) => out.extend(acks.iter().map(|a| a.pkid)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    out
}

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

#[test]
fn a_record_the_store_refuses_is_isolated_and_the_rest_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = start(config(dir.path()));
    // A seq past i64::MAX cannot be stored: decoding refuses it, but the writer must not rely
    // on that (it used to retry such a batch forever, and ingest stopped).
    let records = vec![
        reading(1, 1),
        reading(2, 1),
        reading(3, u64::MAX),
        reading(4, 1),
        reading(5, 1),
    ];
    for (i, rec) in records.into_iter().enumerate() {
        r.items
            .blocking_send(item(rec, i as u16 + 1))
            .expect("send");
    }
    let mut pkids = acked(&mut r, 5);
    pkids.sort();
    assert_eq!(pkids, vec![1, 2, 3, 4, 5], "every message is acknowledged");
    let counts = r.reader.counts().expect("counts");
    assert_eq!(counts.readings, 4);
    assert_eq!(counts.dead_letters, 1);
    assert_eq!(r.metrics.rejected(RejectReason::StoreRefused), 1);
    let fresh = r.fresh.lock().expect("lock").len();
    assert_eq!(fresh, 4, "the committed readings reach the rules");
    // Ingest goes on.
    r.items.blocking_send(item(reading(6, 1), 6)).expect("send");
    assert_eq!(acked(&mut r, 1), vec![6]);
    drop(r.items);
    r.thread.join().expect("writer ends");
}

#[test]
fn event_time_ahead_of_the_wall_clock_is_a_dead_letter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = start(config(dir.path()));
    let mut future = reading(1, 1);
    if let Record::Reading { reading, .. } = &mut future {
        reading.ts = EventTime(4_102_358_400_000); // 2099-12-31
    }
    r.items.blocking_send(item(future, 1)).expect("send");
    r.items.blocking_send(item(reading(2, 1), 2)).expect("send");
    assert_eq!(acked(&mut r, 2).len(), 2);
    let counts = r.reader.counts().expect("counts");
    assert_eq!((counts.readings, counts.dead_letters), (1, 1));
    assert_eq!(r.metrics.rejected(RejectReason::FutureTimestamp), 1);
    assert_eq!(
        r.reader.hot().fleet_clock(),
        Some(T0 + 60_000),
        "the future reading moved no clock"
    );
    drop(r.items);
    r.thread.join().expect("writer ends");
}

#[test]
fn a_full_store_waits_acknowledging_nothing_and_still_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = start(StoreConfig {
        max_size_mib: 1,
        ..config(dir.path())
    });
    // Far more than 1 MiB of readings, in batches of at most 5,000.
    let total = 40_000u64;
    let sender = r.items.clone();
    let feeder = std::thread::spawn(move || {
        for seq in 0..total {
            let pkid = (seq % 60_000) as u16 + 1;
            if sender.blocking_send(item(reading(1, seq), pkid)).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while r.metrics.store_stalled.load(Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the store never filled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(r.metrics.store_stall().is_some());
    // What was acknowledged is exactly what was committed.
    let mut pkids = Vec::new();
    while let Ok(acks) = r.acks.try_recv() {
        pkids.extend(acks);
    }
    let stored = r.reader.counts().expect("counts").readings;
    assert!(stored < total, "the store is full before the end");
    assert_eq!(
        pkids.len() as u64,
        stored,
        "nothing uncommitted is acknowledged"
    );
    r.shutdown.cancel();
    r.thread
        .join()
        .expect("the writer stops at shutdown while the store is full");
    drop(r.items);
    drop(r.acks);
    feeder.join().expect("feeder ends");
}
