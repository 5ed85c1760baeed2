//! The store writer: a dedicated thread (SQLite is blocking) that owns the write connection,
//! commits in batches, and only then releases the MQTT acknowledgements of what it committed.

use crate::metrics::Metrics;
use crate::store::{Record, StoreWriter};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// One received message on its way to the store.
#[derive(Debug)]
pub struct Item {
    /// What to store; `None` for messages that only need their acknowledgement.
    pub record: Option<Record>,
    pub ack: Option<Ack>,
    /// Told once the record is committed (the HJ 212 TCP listener sends its 9014 reply then);
    /// dropped unsent if the writer stops first.
    pub on_commit: Option<oneshot::Sender<()>>,
    pub received: Instant,
}

/// A QoS 1 acknowledgement owed to the broker for a message of connection `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub generation: u64,
    pub pkid: u16,
}

/// Records committed for the first time, in commit order, for downstream consumers (rules).
pub type Committed = Vec<Record>;

/// Where committed records go next; may block (backpressure).
pub type CommittedSink = Box<dyn FnMut(Committed) + Send>;

/// How often retention runs, in wall-clock time.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Run the writer until `rx` closes (every sender dropped), then return.
pub fn run(
    mut store: Box<dyn StoreWriter>,
    mut rx: mpsc::Receiver<Item>,
    acks: mpsc::UnboundedSender<Vec<Ack>>,
    mut committed: Option<CommittedSink>,
    metrics: Arc<Metrics>,
    batch_max: usize,
) {
    let mut last_retention = Instant::now();
    let mut items: Vec<Item> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.blocking_recv() {
        items.push(first);
        // Take what is already waiting: batches grow with load, latency stays low when idle.
        while items.len() < batch_max {
            match rx.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        metrics.queue_depth.store(rx.len() as i64, Relaxed);
        let records: Vec<Record> = items.iter_mut().filter_map(|i| i.record.take()).collect();
        let started = Instant::now();
        let outcome = loop {
            match store.write_batch(&records) {
                Ok(outcome) => break outcome,
                Err(e) => {
                    // Nothing of the batch is acknowledged, so nothing is lost; keep trying
                    // (a full disk may be freed). Backpressure holds the broker meanwhile.
                    metrics.store_errors.fetch_add(1, Relaxed);
                    tracing::error!(error = %e, records = records.len(), "store batch failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let done = Instant::now();
        tracing::debug!(
            records = records.len(),
            waiting = rx.len(),
            commit_ms = (done - started).as_secs_f64() * 1000.0,
            "batch committed"
        );
        metrics
            .batch_seconds
            .observe((done - started).as_secs_f64());
        metrics.batches.fetch_add(1, Relaxed);
        metrics.stored.fetch_add(outcome.stored, Relaxed);
        metrics.duplicates.fetch_add(outcome.duplicates, Relaxed);
        metrics.other_stored.fetch_add(outcome.other, Relaxed);
        for (reason, n) in &outcome.rejected {
            metrics.reject(*reason, *n);
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        for item in &items {
            metrics
                .commit_seconds
                .observe((done - item.received).as_secs_f64());
        }
        let mut newest = metrics.newest_event_ms.load(Relaxed);
        for (record, fresh) in records.iter().zip(&outcome.fresh) {
            if let (Record::Reading { reading, .. }, true) = (record, fresh) {
                newest = newest.max(reading.ts);
                metrics
                    .event_to_commit_seconds
                    .observe((now_ms - reading.ts) as f64 / 1000.0);
            }
        }
        metrics.newest_event_ms.store(newest, Relaxed);

        let mut owed: Vec<Ack> = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            if let Some(notice) = item.on_commit {
                let _ = notice.send(());
            }
            owed.extend(item.ack);
        }
        // The ack channel is unbounded but never holds more than the ingest queue plus one
        // batch: an ack exists only for a message that went through the bounded queue.
        if !owed.is_empty() && acks.send(owed).is_err() {
            tracing::debug!("ingest loop gone; acknowledgements dropped (broker will redeliver)");
        }
        if let Some(sink) = committed.as_mut() {
            let fresh: Committed = records
                .into_iter()
                .zip(outcome.fresh)
                .filter_map(|(r, f)| f.then_some(r))
                .collect();
            if !fresh.is_empty() {
                sink(fresh);
            }
        }
        if last_retention.elapsed() >= RETENTION_EVERY && newest > 0 {
            last_retention = Instant::now();
            match store.apply_retention(newest) {
                Ok(n) => tracing::info!(deleted = n, "retention applied"),
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
        }
    }
}
