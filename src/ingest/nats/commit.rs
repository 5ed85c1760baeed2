//! The store writer of NATS ingest: one thread owns the store's write side (as with MQTT) and
//! commits each partition's batch under that partition's fence, then tells the partition's
//! consumer, which acknowledges the messages only then.

use crate::ingest::writer::{
    bound_event_time, write_isolating, CommittedSink, NotWritten, WriterOptions,
};
use crate::metrics::Metrics;
use crate::store::{BatchOutcome, Fence, Record, StoreWriter};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// One partition's batch on its way to the store.
pub struct Job {
    pub records: Vec<Record>,
    /// None for records outside any partition (dead letters of HJ 212 TCP frames).
    pub fence: Option<Fence>,
    pub done: oneshot::Sender<Result<BatchOutcome, NotWritten>>,
}

/// Run until every job sender is dropped. Retention runs between batches as with MQTT ingest.
pub fn run(
    mut store: Box<dyn StoreWriter>,
    mut jobs: mpsc::Receiver<Job>,
    mut committed: Option<CommittedSink>,
    metrics: Arc<Metrics>,
    options: WriterOptions,
    shutdown: CancellationToken,
) {
    let mut last_retention = Instant::now();
    while let Some(job) = jobs.blocking_recv() {
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let mut records: Vec<Record> = job
            .records
            .into_iter()
            .map(|r| bound_event_time(r, wall_ms, &options))
            .collect();
        let started = Instant::now();
        let result = write_isolating(
            store.as_mut(),
            &mut records,
            job.fence,
            &options.root,
            &metrics,
            &shutdown,
        );
        if let Ok(outcome) = &result {
            if !records.is_empty() {
                metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.batches.fetch_add(1, Relaxed);
            }
            metrics.stored.fetch_add(outcome.stored, Relaxed);
            metrics.duplicates.fetch_add(outcome.duplicates, Relaxed);
            metrics.other_stored.fetch_add(outcome.other, Relaxed);
            for (reason, n) in &outcome.rejected {
                metrics.reject(*reason, *n);
            }
            let mut newest = metrics.newest_event_ms.load(Relaxed);
            for (record, fresh) in records.iter().zip(&outcome.fresh) {
                if let (Record::Reading { reading, .. }, true) = (record, fresh) {
                    newest = newest.max(reading.ts.ms());
                }
            }
            metrics.newest_event_ms.store(newest, Relaxed);
            if let Some(clock) = store.fleet_clock() {
                metrics.fleet_clock_ms.store(clock, Relaxed);
            }
            if let Some(sink) = committed.as_mut() {
                let fresh: Vec<Record> = records
                    .into_iter()
                    .zip(outcome.fresh.iter())
                    .filter_map(|(r, f)| f.then_some(r))
                    .collect();
                if !fresh.is_empty() {
                    sink(fresh);
                }
            }
        }
        // The consumer may have stopped meanwhile (lease lost): then nobody acknowledges and
        // JetStream redelivers to the next owner, which finds the records already stored.
        let _ = job.done.send(result);
        if last_retention.elapsed() >= store.retention_every() {
            last_retention = Instant::now();
            if let Some(now) = store.fleet_clock() {
                metrics.retention_passes.fetch_add(1, Relaxed);
                match store.apply_retention(now) {
                    Ok(report) => tracing::info!(deleted = report.deleted, "retention applied"),
                    Err(e) => tracing::warn!(error = %e, "retention failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, StoreConfig};
    use dustwatch_protocol::{EventTime, Reading};
    use std::sync::Mutex;

    fn reading(seq: u64) -> Record {
        Record::Reading {
            site: "s1".into(),
            device: "d1".into(),
            reading: Reading {
                ts: EventTime(1_483_228_800_000 + seq as i64 * 60_000),
                seq,
                boot: 1,
                interval_s: 60,
                pm10: Some(80.0),
                ..Default::default()
            },
        }
    }

    fn send(
        jobs: &mpsc::Sender<Job>,
        records: Vec<Record>,
        revision: u64,
    ) -> Result<BatchOutcome, NotWritten> {
        let (done, result) = oneshot::channel();
        let fence = Some(Fence {
            partition: 1,
            revision,
        });
        jobs.blocking_send(Job {
            records,
            fence,
            done,
        })
        .expect("writer runs");
        result.blocking_recv().expect("writer answers")
    }

    #[test]
    fn a_fenced_batch_reaches_neither_the_store_nor_the_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(
            StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            false,
        )
        .expect("open");
        let reader = store.reader().expect("reader");
        let to_rules: Arc<Mutex<Vec<Record>>> = Arc::default();
        let sink = to_rules.clone();
        let (jobs, rx) = mpsc::channel(1);
        let writer = std::thread::spawn(move || {
            run(
                Box::new(store),
                rx,
                Some(Box::new(move |batch| {
                    sink.lock().expect("not poisoned").extend(batch)
                })),
                Arc::new(Metrics::default()),
                WriterOptions {
                    batch_max: 100,
                    max_future_ms: i64::MAX,
                    root: dustwatch_protocol::TopicRoot::default(),
                },
                CancellationToken::new(),
            )
        });
        // The new owner (revision 9) writes; the old one (revision 7) comes back after it.
        let first = send(&jobs, vec![reading(1), reading(2)], 9).expect("owner writes");
        assert_eq!(first.stored, 2);
        let late = send(&jobs, vec![reading(3)], 7);
        assert!(matches!(late, Err(NotWritten::Fenced(_))), "{late:?}");
        drop(jobs);
        writer.join().expect("writer ends");
        use crate::store::StoreReader;
        assert_eq!(reader.counts().expect("counts").readings, 2);
        assert_eq!(
            to_rules.lock().expect("not poisoned").len(),
            2,
            "only committed records"
        );
    }
}
