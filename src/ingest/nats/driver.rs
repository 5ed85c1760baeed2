//! The lease driver: every third of the lease TTL it announces this instance in the key-value
//! bucket, reads the bucket, asks [`Leases`] what to do and does it with compare-and-set writes,
//! starting and stopping the partitions' consumers to match. At shutdown it gives every lease
//! back so the other instances take over at once instead of after the TTL.

use super::consumer::{self, Ended, Partition, Shared};
use super::leases::{Action, Holder, Leases, View};
use crate::metrics::Metrics;
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const INSTANCE: &str = "instance.";
const PARTITION: &str = "partition.";

/// A partition being consumed.
struct Running {
    stop: CancellationToken,
    revision: watch::Sender<u64>,
    task: JoinHandle<Ended>,
}

pub struct Driver {
    pub kv: kv::Store,
    pub leases: Leases,
    pub shared: Shared,
    pub metrics: Arc<Metrics>,
    pub every: Duration,
    running: BTreeMap<u32, Running>,
}

impl Driver {
    pub fn new(kv: kv::Store, leases: Leases, shared: Shared, every: Duration) -> Driver {
        let metrics = shared.metrics.clone();
        Driver {
            kv,
            leases,
            shared,
            metrics,
            every,
            running: BTreeMap::new(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.reap().await;
            self.metrics.nats.lease_rounds.fetch_add(1, Relaxed);
            if let Err(e) = self.step().await {
                // Leases not renewed lapse after the TTL: the consumers stop then (plan says Lost).
                tracing::warn!(error = %e, "lease round failed");
            }
            self.metrics
                .nats
                .partitions_owned
                .store(self.leases.held().len() as i64, Relaxed);
        }
        self.give_back_all().await;
        self.metrics.nats.partitions_owned.store(0, Relaxed);
        tracing::info!("NATS ingest stopped");
    }

    /// Handle consumers that ended on their own.
    async fn reap(&mut self) {
        let ended: Vec<u32> = self
            .running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for partition in ended {
            let Some(r) = self.running.remove(&partition) else {
                continue;
            };
            let revision = self.leases.revision(partition);
            self.leases.released(partition);
            self.release_sites(partition).await;
            match r.task.await {
                Ok(Ended::Fenced) => {
                    self.metrics.nats.leases_lost.fetch_add(1, Relaxed);
                }
                // Never adopted: the rules have nothing of it to let go of.
                Ok(Ended::NotAdopted) => {
                    self.delete(partition, revision).await;
                }
                Ok(Ended::Stopped) => {}
                Ok(Ended::Failed(e)) => {
                    tracing::warn!(partition, error = %e, "partition consumer failed; giving the lease back");
                    self.delete(partition, revision).await;
                }
                Err(e) => {
                    tracing::error!(partition, error = %e, "partition consumer panicked; giving the lease back");
                    self.delete(partition, revision).await;
                }
            }
        }
    }

    async fn view(&self) -> Result<View, String> {
        let mut view = View::default();
        let mut keys = self.kv.keys().await.map_err(|e| e.to_string())?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| e.to_string())?;
            if let Some(name) = key.strip_prefix(INSTANCE) {
                view.live.insert(name.to_string());
            } else if let Some(p) = key.strip_prefix(PARTITION).and_then(|p| p.parse().ok()) {
                if let Some(entry) = self
                    .kv
                    .entry(key.as_str())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    if entry.operation == kv::Operation::Put {
                        let owner = String::from_utf8_lossy(&entry.value).into_owned();
                        view.holders.insert(
                            p,
                            Holder {
                                owner,
                                revision: entry.revision,
                            },
                        );
                    }
                }
            }
        }
        Ok(view)
    }

    async fn step(&mut self) -> Result<(), String> {
        let me = self.leases.me().to_string();
        self.kv
            .put(format!("{INSTANCE}{me}"), Bytes::new())
            .await
            .map_err(|e| e.to_string())?;
        let view = self.view().await?;
        let actions = self.leases.plan(&view, Instant::now());
        for action in actions {
            match action {
                Action::Renew {
                    partition,
                    revision,
                } => {
                    let at = Instant::now();
                    match self
                        .kv
                        .update(key(partition), Bytes::from(me.clone()), revision)
                        .await
                    {
                        Ok(new) => {
                            self.leases.confirmed(partition, new, at);
                            if let Some(r) = self.running.get(&partition) {
                                let _ = r.revision.send(new);
                            }
                        }
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            tracing::warn!(partition, error = %e, "lease renewal refused; partition lost");
                            self.lose(partition).await;
                        }
                        // No answer (a node going away): keep consuming; the next round finds
                        // out, and the lease lapses by itself if renewals keep failing.
                        Err(e) => tracing::warn!(partition, error = %e, "lease renewal failed"),
                    }
                }
                Action::Take { partition } => {
                    let at = Instant::now();
                    match self
                        .kv
                        .create(key(partition), Bytes::from(me.clone()))
                        .await
                    {
                        Ok(revision) => {
                            self.leases.confirmed(partition, revision, at);
                            self.metrics.nats.leases_taken.fetch_add(1, Relaxed);
                            tracing::info!(partition, revision, "lease taken");
                            self.start(partition, revision);
                        }
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                            tracing::debug!(partition, "another instance took it first");
                        }
                        Err(e) => tracing::warn!(partition, error = %e, "taking the lease failed"),
                    }
                }
                Action::GiveBack {
                    partition,
                    revision,
                } => {
                    self.stop(partition).await;
                    self.leases.released(partition);
                    self.release_sites(partition).await;
                    self.delete(partition, Some(revision)).await;
                    self.metrics.nats.leases_given_back.fetch_add(1, Relaxed);
                    tracing::info!(partition, "lease given back for a newly live instance");
                }
                Action::Lost { partition } => self.lose(partition).await,
            }
        }
        Ok(())
    }

    fn start(&mut self, partition: u32, revision: u64) {
        let (tx, rx) = watch::channel(revision);
        let stop = CancellationToken::new();
        let shared = self.shared.clone();
        let p = Partition {
            partition,
            revision: rx,
            stop: stop.clone(),
        };
        // The rules rebuild the partition's sites from the store before its first record is
        // fetched here; the lease keeps being renewed meanwhile.
        let task = tokio::spawn(async move {
            if let Some(rules) = &shared.rules {
                tokio::select! {
                    _ = p.stop.cancelled() => return Ended::Stopped,
                    adopted = rules.adopt(partition) => match adopted {
                        Ok(sites) => {
                            shared.metrics.nats.sites_adopted.fetch_add(sites as u64, Relaxed);
                        }
                        Err(e) => {
                            tracing::error!(partition, error = %e, "the rules could not take the partition's sites over");
                            return Ended::NotAdopted;
                        }
                    }
                }
            }
            consumer::run(shared, p).await
        });
        self.running.insert(
            partition,
            Running {
                stop,
                revision: tx,
                task,
            },
        );
    }

    /// Stop a partition's consumer and wait for it (its batch in hand commits and is acked).
    async fn stop(&mut self, partition: u32) {
        if let Some(r) = self.running.remove(&partition) {
            r.stop.cancel();
            let _ = r.task.await;
        }
    }

    /// The lease is gone: stop consuming without waiting (a batch in hand will be fenced, and
    /// the rules ignore it once the sites are released).
    async fn lose(&mut self, partition: u32) {
        if let Some(r) = self.running.remove(&partition) {
            r.stop.cancel();
        }
        self.leases.released(partition);
        self.release_sites(partition).await;
        self.metrics.nats.leases_lost.fetch_add(1, Relaxed);
        tracing::warn!(partition, "lease lost; partition no longer consumed here");
    }

    async fn delete(&self, partition: u32, revision: Option<u64>) {
        if let Some(revision) = revision {
            if let Err(e) = self
                .kv
                .delete_expect_revision(key(partition), Some(revision))
                .await
            {
                tracing::debug!(partition, error = %e, "lease not deleted (it moved on already)");
            }
        }
    }

    /// The rules let go of the partition's sites (another instance judges them now).
    async fn release_sites(&self, partition: u32) {
        if let Some(rules) = &self.shared.rules {
            if let Err(e) = rules.release(partition).await {
                tracing::debug!(partition, error = %e, "rules gone");
            }
        }
    }

    async fn give_back_all(&mut self) {
        let held: Vec<(u32, u64)> = self
            .leases
            .held()
            .iter()
            .map(|(p, h)| (*p, h.revision))
            .collect();
        for (partition, revision) in held {
            self.stop(partition).await;
            self.leases.released(partition);
            self.release_sites(partition).await;
            self.delete(partition, Some(revision)).await;
        }
        let me = self.leases.me().to_string();
        let _ = self.kv.delete(format!("{INSTANCE}{me}")).await;
    }
}

fn key(partition: u32) -> String {
    format!("{PARTITION}{partition}")
}
