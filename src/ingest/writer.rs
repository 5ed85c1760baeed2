//! The store writer: a dedicated thread (SQLite is blocking) that owns the write connection,
//! commits in batches, and only then releases the MQTT acknowledgements of what it committed.
//!
//! No single record can stop it: event times ahead of the wall clock become dead letters before
//! the store sees them; a record the store refuses for good is isolated by splitting the batch
//! and kept as a dead letter while the rest commits; only errors that retrying can fix (a lock, a
//! full disk) make it wait, and then it acknowledges nothing and still stops at shutdown.

use crate::metrics::Metrics;
use crate::store::{BatchOutcome, Fence, Record, StoreError, StoreWriter};
use dustwatch_protocol::{check_not_future, EventTime, RejectReason, Rejected, TopicRoot};
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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

/// How the writer batches and what it refuses.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most records in one store transaction.
    pub batch_max: usize,
    /// Event times further than this ahead of the wall clock are dead letters.
    pub max_future_ms: i64,
    /// Topic root, to name the topic of a record turned into a dead letter here.
    pub root: TopicRoot,
}

/// Longest wait between two attempts while the store keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Run the writer until `rx` closes (every sender dropped), or until `shutdown` while the store
/// keeps failing (then nothing of the batch in hand is acknowledged: the broker redelivers it).
pub fn run(
    mut store: Box<dyn StoreWriter>,
    mut rx: mpsc::Receiver<Item>,
    acks: mpsc::UnboundedSender<Vec<Ack>>,
    mut committed: Option<CommittedSink>,
    metrics: Arc<Metrics>,
    options: WriterOptions,
    shutdown: CancellationToken,
) {
    let batch_max = options.batch_max.max(1);
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
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let mut records: Vec<Record> = items
            .iter_mut()
            .filter_map(|i| i.record.take())
            .map(|r| bound_event_time(r, wall_ms, &options))
            .collect();
        let started = Instant::now();
        let Ok(outcome) = write_isolating(
            store.as_mut(),
            &mut records,
            None,
            &options.root,
            &metrics,
            &shutdown,
        ) else {
            tracing::warn!(
                records = records.len(),
                "stopping while the store fails: the batch is not acknowledged (the broker redelivers it)"
            );
            return;
        };
        let done = Instant::now();
        tracing::debug!(
            records = records.len(),
            waiting = rx.len(),
            commit_ms = (done - started).as_secs_f64() * 1000.0,
            "batch committed"
        );
        if !records.is_empty() {
            metrics
                .batch_seconds
                .observe((done - started).as_secs_f64());
            metrics.batches.fetch_add(1, Relaxed);
        }
        metrics.stored.fetch_add(outcome.stored, Relaxed);
        metrics.duplicates.fetch_add(outcome.duplicates, Relaxed);
        metrics.other_stored.fetch_add(outcome.other, Relaxed);
        for (reason, n) in &outcome.rejected {
            metrics.reject(*reason, *n);
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        for item in items
            .iter()
            .filter(|i| i.ack.is_some() || i.on_commit.is_some())
        {
            metrics
                .commit_seconds
                .observe((done - item.received).as_secs_f64());
        }
        let mut newest = metrics.newest_event_ms.load(Relaxed);
        for (record, fresh) in records.iter().zip(&outcome.fresh) {
            if let (Record::Reading { reading, .. }, true) = (record, fresh) {
                newest = newest.max(reading.ts.ms());
                metrics
                    .event_to_commit_seconds
                    .observe((now_ms - reading.ts.ms()) as f64 / 1000.0);
            }
        }
        metrics.newest_event_ms.store(newest, Relaxed);
        if let Some(clock) = store.fleet_clock() {
            metrics.fleet_clock_ms.store(clock, Relaxed);
        }

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
        if last_retention.elapsed() >= store.retention_every() {
            last_retention = Instant::now();
            retention(store.as_mut(), &metrics);
        }
    }
}

/// A record stamped further ahead of the wall clock than allowed becomes a dead letter: one
/// device's clock must never move the store's or the rules' idea of "now".
pub(crate) fn bound_event_time(record: Record, wall_ms: i64, options: &WriterOptions) -> Record {
    match record.event_time() {
        Some(ts) => match check_not_future(ts, EventTime(wall_ms), options.max_future_ms) {
            Ok(()) => record,
            Err(rejected) => record.into_dead_letter(&options.root, rejected),
        },
        None => record,
    }
}

fn retention(store: &mut dyn StoreWriter, metrics: &Metrics) {
    // "Now" for retention is the clock the fleet agrees on, never one device's.
    let Some(now) = store.fleet_clock() else {
        return;
    };
    let result = store.apply_retention(now);
    metrics.retention_passes.fetch_add(1, Relaxed);
    match result {
        Ok(report) => {
            tracing::info!(deleted = report.deleted, "retention applied");
            for refused in &report.refused {
                metrics.retention_refused.fetch_add(1, Relaxed);
                tracing::error!(table = refused.table, reason = %refused, "retention refused");
            }
        }
        Err(e) => tracing::warn!(error = %e, "retention failed"),
    }
}

/// Why a batch was not written.
#[derive(Debug)]
pub enum NotWritten {
    /// Shutdown came while the store kept failing.
    Shutdown,
    /// The partition's lease moved on (the store's [`StoreError::Fenced`]): nothing written.
    Fenced(StoreError),
}

/// Write `records` (all of them, some perhaps turned into dead letters), waiting out transient
/// store errors; with a fence, as its owner's batch (a fenced part ends the whole batch).
pub(crate) fn write_isolating(
    store: &mut dyn StoreWriter,
    records: &mut [Record],
    fence: Option<Fence>,
    root: &TopicRoot,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<BatchOutcome, NotWritten> {
    if records.is_empty() {
        // Only acknowledgements, or the idle tick: no transaction.
        return Ok(BatchOutcome::default());
    }
    let mut backoff = Duration::from_millis(250);
    // Ranges still to write, the next on top; committed parts with where they start.
    let mut pending: Vec<Range<usize>> = Vec::with_capacity(8);
    pending.push(0..records.len());
    let mut parts: Vec<(usize, BatchOutcome)> = Vec::new();
    while let Some(range) = pending.pop() {
        let part = &records[range.clone()];
        let written = match fence {
            Some(fence) => store.write_batch_fenced(part, fence),
            None => store.write_batch(part),
        };
        let error = match written {
            Ok(outcome) => {
                if metrics.store_stalled.swap(0, Relaxed) == 1 {
                    tracing::info!("store writes again; ingest resumes");
                    metrics.set_store_stall(None);
                }
                backoff = Duration::from_millis(250);
                parts.push((range.start, outcome));
                continue;
            }
            Err(e) => e,
        };
        if let StoreError::Fenced { .. } = error {
            // Parts already committed stay so: their owner held the lease then.
            return Err(NotWritten::Fenced(error));
        }
        metrics.store_errors.fetch_add(1, Relaxed);
        if error.is_transient() {
            // Nothing of the batch is acknowledged, so nothing is lost; backpressure holds the
            // broker meanwhile (a full disk may be freed, a lock released).
            if metrics.store_stalled.swap(1, Relaxed) == 0 {
                tracing::error!(error = %error, records = range.len(), "store cannot write; ingest waits and acknowledges nothing");
            }
            metrics.set_store_stall(Some(error.to_string()));
            pending.push(range);
            if !pause(shutdown, backoff) {
                return Err(NotWritten::Shutdown);
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        if range.len() > 1 {
            // Find the refused record(s): halves commit on their own, in order.
            let mid = range.start + range.len() / 2;
            pending.push(mid..range.end);
            pending.push(range.start..mid);
            continue;
        }
        let i = range.start;
        tracing::error!(error = %error, "store refused a record; kept as a dead letter");
        let detail = format!("the store refused it: {error}");
        records[i] = match std::mem::replace(&mut records[i], placeholder()) {
            // Even the dead letter was refused: keep its reason without the payload.
            Record::DeadLetter(mut d) if d.reason == RejectReason::StoreRefused => {
                if d.payload.is_empty() {
                    tracing::error!(topic = %d.topic, "dead letter refused by the store; dropped");
                    parts.push((
                        i,
                        BatchOutcome {
                            fresh: vec![false],
                            ..BatchOutcome::default()
                        },
                    ));
                    continue;
                }
                d.payload.clear();
                Record::DeadLetter(d)
            }
            Record::DeadLetter(mut d) => {
                d.detail = format!("{} ({detail})", d.detail);
                d.reason = RejectReason::StoreRefused;
                Record::DeadLetter(d)
            }
            other => {
                other.into_dead_letter(root, Rejected::new(RejectReason::StoreRefused, detail))
            }
        };
        pending.push(range);
    }
    parts.sort_by_key(|(start, _)| *start);
    let mut total = BatchOutcome::default();
    for (_, o) in parts {
        total.stored += o.stored;
        total.duplicates += o.duplicates;
        total.other += o.other;
        total.fresh.extend(o.fresh);
        for (reason, n) in o.rejected {
            match total.rejected.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, sum)) => *sum += n,
                None => total.rejected.push((reason, n)),
            }
        }
    }
    Ok(total)
}

fn placeholder() -> Record {
    Record::DeadLetter(crate::store::DeadLetter {
        topic: String::new(),
        payload: Vec::new(),
        reason: RejectReason::StoreRefused,
        detail: String::new(),
    })
}

/// Sleep `wait` unless shutdown comes first (then false).
fn pause(shutdown: &CancellationToken, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if shutdown.is_cancelled() {
            return false;
        }
        std::thread::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        );
    }
    !shutdown.is_cancelled()
}
