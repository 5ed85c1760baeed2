//! The rules task: one thread owns the engine (per-site state has one owner). It takes committed
//! batches from the store writer and commands from the web through one bounded channel, persists
//! what changed, and publishes alert state changes (retained) and daily reports.

use super::alerts::{Alert, Change, Transition};
use super::engine::{DayStats, Engine, Output};
use crate::publish::Publisher;
use crate::store::{AlertStore, AlertWriter, DayRow, Record, StoreError};
use serde_json::json;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

pub use super::engine::{day_row, day_stats};
pub use super::error::RulesError;
pub use super::owned::{Ownership, PartitionOf, Sites};

pub enum Input {
    Batch(Vec<Record>),
    /// Time passed: what other instances stored (reference stations, city levels) is read.
    Tick,
    Ack {
        id: i64,
        by: String,
        comment: String,
        reply: oneshot::Sender<Result<Alert, RulesError>>,
    },
    /// The figures of the open days and of the days closed recently, with what was not judged.
    Days {
        reply: oneshot::Sender<Vec<DayStats>>,
    },
    /// Take over a partition's sites, rebuilt from the store, before its records arrive.
    Adopt {
        partition: u32,
        reply: oneshot::Sender<Result<usize, RulesError>>,
    },
    /// Let go of a partition's sites: another instance judges them now.
    Release {
        partition: u32,
        reply: oneshot::Sender<()>,
    },
}

/// Closed days kept for `RulesHandle::days` (what was not judged is not in the store's rows).
const RECENT_DAYS: usize = 8;

/// Talk to the running engine.
#[derive(Clone)]
pub struct RulesHandle {
    tx: mpsc::Sender<Input>,
}

impl RulesHandle {
    /// Acknowledge an open alert.
    pub async fn ack(&self, id: i64, by: String, comment: String) -> Result<Alert, RulesError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Ack {
                id,
                by,
                comment,
                reply,
            })
            .await
            .map_err(|_| RulesError::Stopped)?;
        rx.await.map_err(|_| RulesError::Stopped)?
    }

    /// Every site's figures for the open day and the last few closed days, including what could
    /// not be judged and why (`DayStats::not_judged`).
    pub async fn days(&self) -> Result<Vec<DayStats>, RulesError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Days { reply })
            .await
            .map_err(|_| RulesError::Stopped)?;
        rx.await.map_err(|_| RulesError::Stopped)
    }

    /// Take over `partition`'s sites (rebuilt from the store); answers with how many.
    pub async fn adopt(&self, partition: u32) -> Result<usize, RulesError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Adopt { partition, reply })
            .await
            .map_err(|_| RulesError::Stopped)?;
        rx.await.map_err(|_| RulesError::Stopped)?
    }

    /// Let go of `partition`'s sites.
    pub async fn release(&self, partition: u32) -> Result<(), RulesError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Release { partition, reply })
            .await
            .map_err(|_| RulesError::Stopped)?;
        rx.await.map_err(|_| RulesError::Stopped)
    }

    /// Sender of committed batches, for the store writer (blocking side).
    pub fn batch_sink(&self) -> impl FnMut(Vec<Record>) + Send + 'static {
        let tx = self.tx.clone();
        move |batch| {
            // Waits when the engine is behind: backpressure up to the broker.
            if tx.blocking_send(Input::Batch(batch)).is_err() {
                tracing::debug!("rules engine gone");
            }
        }
    }
}

/// How often the figures of still-open days are saved (wall clock).
const OPEN_DAY_SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Called when a daily report is due: builds and publishes it (the report module supplies it).
pub type ReportFn = Box<dyn FnMut(chrono::NaiveDate) + Send>;

/// Start the engine thread on the SQLite store under `data_dir`. Returns its handle; the thread
/// ends when every handle and sink is dropped.
pub fn start(
    engine: Engine,
    data_dir: &Path,
    publisher: Option<Publisher>,
    on_report: Option<ReportFn>,
    queue: usize,
) -> Result<(RulesHandle, std::thread::JoinHandle<()>), RulesError> {
    let store = AlertStore::open(data_dir)?;
    start_with(engine, Box::new(store), publisher, on_report, queue)
}

/// Start the engine thread on any alert store (SQLite, PostgreSQL).
pub fn start_with(
    engine: Engine,
    store: Box<dyn AlertWriter>,
    publisher: Option<Publisher>,
    on_report: Option<ReportFn>,
    queue: usize,
) -> Result<(RulesHandle, std::thread::JoinHandle<()>), RulesError> {
    start_owning(engine, store, None, publisher, on_report, queue)
}

/// As [`start_with`], judging the sites `ownership` says and rebuilding them from the store when
/// they are taken over (at start for [`Sites::All`], per partition for [`Sites::Partitioned`]).
pub fn start_owning(
    mut engine: Engine,
    mut store: Box<dyn AlertWriter>,
    ownership: Option<Ownership>,
    publisher: Option<Publisher>,
    mut on_report: Option<ReportFn>,
    queue: usize,
) -> Result<(RulesHandle, std::thread::JoinHandle<()>), RulesError> {
    let (open, history, max_id) = store.load()?;
    engine.book_mut().restore(open, history, max_id);
    let partitioned = matches!(
        ownership,
        Some(Ownership {
            sites: Sites::Partitioned(_),
            ..
        })
    );
    let mut owned = super::owned::Owned::new(ownership);
    owned.start(&mut engine, store.as_ref())?;
    let (tx, mut rx) = mpsc::channel::<Input>(queue.max(1));
    if partitioned {
        tick(&tx)?;
    }
    let thread = std::thread::Builder::new()
        .name("rules".into())
        .spawn(move || {
            let mut last_open_save = std::time::Instant::now();
            let mut recent: std::collections::BTreeMap<(chrono::NaiveDate, String), DayStats> =
                Default::default();
            while let Some(input) = rx.blocking_recv() {
                match input {
                    input @ (Input::Batch(_) | Input::Tick) => {
                        let mut records = match input {
                            Input::Batch(records) => records,
                            _ => Vec::new(),
                        };
                        owned.keep_owned(&mut records);
                        let mut outputs = engine.process(&records);
                        outputs.extend(owned.refresh_background(&mut engine));
                        outputs.extend(owned.refresh_levels(&mut engine));
                        // Open days are saved every few seconds, not per batch: they are
                        // progress figures, and closed days are always saved at once.
                        let save_open = last_open_save.elapsed() >= OPEN_DAY_SAVE_EVERY;
                        if save_open {
                            last_open_save = std::time::Instant::now();
                        }
                        let progress = owned.progress_changes(&engine);
                        match persist_with(
                            store.as_mut(),
                            &engine,
                            &outputs,
                            publisher.as_ref(),
                            save_open,
                            &progress,
                        ) {
                            Ok(()) => owned.progress_saved(progress),
                            Err(e) => {
                                tracing::error!(error = %e, "could not persist rule outputs")
                            }
                        }
                        for o in &outputs {
                            if let Output::DayClosed(d) = o {
                                recent.insert((d.date, d.site.clone()), d.clone());
                            }
                            if let (Output::ReportDue(date), Some(f)) = (o, on_report.as_mut()) {
                                f(*date);
                            }
                        }
                        // Bounded: the last few closed dates only.
                        let dates: std::collections::BTreeSet<chrono::NaiveDate> =
                            recent.keys().map(|(d, _)| *d).collect();
                        if let Some(oldest) = dates.iter().rev().nth(RECENT_DAYS).copied() {
                            recent.retain(|(d, _), _| *d > oldest);
                        }
                    }
                    Input::Ack {
                        id,
                        by,
                        comment,
                        reply,
                    } => {
                        let result = match engine.book_mut().acknowledge(id, &by, &comment) {
                            Some(t) => {
                                let row = t.alert.clone();
                                let outputs = vec![Output::Alert(t)];
                                persist(
                                    store.as_mut(),
                                    &engine,
                                    &outputs,
                                    publisher.as_ref(),
                                    false,
                                )
                                .map(|_| row)
                                .map_err(RulesError::from)
                            }
                            None => Err(RulesError::NoSuchAlert(id)),
                        };
                        let _ = reply.send(result);
                    }
                    Input::Days { reply } => {
                        let mut days: Vec<DayStats> = recent.values().cloned().collect();
                        days.extend(engine.open_days());
                        let _ = reply.send(days);
                    }
                    Input::Adopt { partition, reply } => {
                        let _ = reply.send(owned.adopt(partition, &mut engine, store.as_ref()));
                    }
                    Input::Release { partition, reply } => {
                        // Its open days as they stand, for the next owner.
                        if let Err(e) = persist(store.as_mut(), &engine, &[], None, true) {
                            tracing::warn!(error = %e, "could not save the open days");
                        }
                        owned.release(partition, &mut engine);
                        let _ = reply.send(());
                    }
                }
            }
            if let Err(e) = persist(store.as_mut(), &engine, &[], None, true) {
                tracing::warn!(error = %e, "could not save the open days at stop");
            }
            tracing::info!("rules engine stopped");
        })
        .map_err(|e| RulesError::Store(StoreError::Corrupt(format!("rules thread: {e}"))))?;
    Ok((RulesHandle { tx }, thread))
}

/// Wake the engine thread now and then, so that what other instances store reaches it while
/// no batch of its own arrives. Ends with the engine (it holds only a weak sender).
fn tick(tx: &mpsc::Sender<Input>) -> Result<(), RulesError> {
    let weak = tx.downgrade();
    std::thread::Builder::new()
        .name("rules-tick".into())
        .spawn(move || loop {
            std::thread::sleep(super::owned::BACKGROUND_EVERY);
            let Some(tx) = weak.upgrade() else {
                return;
            };
            // A full queue has work in it already: this tick is not needed.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Input::Tick) {
                return;
            }
        })
        .map_err(|e| RulesError::Store(StoreError::Corrupt(format!("rules tick thread: {e}"))))?;
    Ok(())
}

fn persist(
    store: &mut dyn AlertWriter,
    engine: &Engine,
    outputs: &[Output],
    publisher: Option<&Publisher>,
    save_open: bool,
) -> Result<(), StoreError> {
    persist_with(store, engine, outputs, publisher, save_open, &[])
}

/// As [`persist`], saving with the alert changes how far each site was judged (`progress`).
fn persist_with(
    store: &mut dyn AlertWriter,
    engine: &Engine,
    outputs: &[Output],
    publisher: Option<&Publisher>,
    save_open: bool,
    progress: &[(String, i64)],
) -> Result<(), StoreError> {
    let transitions: Vec<&Transition> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Alert(t) => Some(t),
            _ => None,
        })
        .collect();
    let rows: Vec<(Change, Alert)> = transitions
        .iter()
        .map(|t| (t.change, t.alert.clone()))
        .collect();
    if !rows.is_empty() || !progress.is_empty() {
        store.apply_with_progress(&rows, progress)?;
    }
    // Closed days are final; open days are saved as they stand so reports and restarts see them.
    let mut days: Vec<DayRow> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::DayClosed(d) => Some(day_row(d, true)),
            _ => None,
        })
        .collect();
    if save_open {
        days.extend(engine.open_days().iter().map(|d| day_row(d, false)));
    }
    if !days.is_empty() {
        store.save_days(&days)?;
    }
    if let Some(p) = publisher {
        for t in transitions.iter().filter(|t| t.change.is_state_change()) {
            let topic = p.root().alert(&t.alert.site, &t.alert.rule);
            // A closed alert clears its retained topic, as the contract says.
            let payload = if t.change == Change::Closed {
                Vec::new()
            } else {
                serde_json::to_vec(&json!({"change": t.change, "alert": &t.alert}))
                    .unwrap_or_default()
            };
            p.publish(topic, payload, true);
        }
    }
    Ok(())
}
