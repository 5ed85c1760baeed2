//! One owned partition: a durable pull consumer on its subjects. Each fetched batch is decoded
//! exactly as MQTT ingest decodes a message, committed under the partition's fence by the store
//! writer, and acknowledged only after the commit. A fenced batch ends the consumer with nothing
//! acknowledged: JetStream redelivers it to the partition's new owner.

use super::commit::Job;
use super::config::NatsConfig;
use super::NatsError;
use crate::ingest::decode;
use crate::ingest::hj212::{Hj212Devices, MqttFrames};
use crate::ingest::writer::NotWritten;
use crate::metrics::Metrics;
use crate::store::{Fence, Record};
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use dustwatch_protocol::TopicRoot;
use futures_util::StreamExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How a partition's consumer ended.
#[derive(Debug)]
pub enum Ended {
    /// Told to stop (lease given back or lost, or shutdown).
    Stopped,
    /// The store refused a batch: a newer owner wrote the partition.
    Fenced,
    /// JetStream or the store writer failed; the driver lets the lease lapse or retries.
    Failed(NatsError),
    /// The rules could not rebuild the partition's sites; nothing was consumed.
    NotAdopted,
}

/// What a partition's consumer needs.
pub struct Partition {
    pub partition: u32,
    /// The lease revision held now; renewals move it forward.
    pub revision: watch::Receiver<u64>,
    pub stop: CancellationToken,
}

/// Shared by all partitions of an instance.
#[derive(Clone)]
pub struct Shared {
    pub stream: jetstream::stream::Stream,
    pub config: Arc<NatsConfig>,
    pub root: TopicRoot,
    pub hj212: Arc<Hj212Devices>,
    pub jobs: mpsc::Sender<Job>,
    pub metrics: Arc<Metrics>,
    /// The rules engine, told which partitions' sites it judges (none when rules are off).
    pub rules: Option<crate::rules::RulesHandle>,
}

/// The durable consumer's name for a partition: every instance uses the same one, so a new
/// owner continues where the old one acknowledged.
pub fn consumer_name(config: &NatsConfig, partition: u32) -> String {
    format!("{}-p{partition}", config.stream.to_lowercase())
}

pub async fn run(shared: Shared, p: Partition) -> Ended {
    match consume(&shared, &p).await {
        Ok(ended) => ended,
        Err(e) => Ended::Failed(e),
    }
}

async fn consume(shared: &Shared, p: &Partition) -> Result<Ended, NatsError> {
    let config = &shared.config;
    let name = consumer_name(config, p.partition);
    let consumer: jetstream::consumer::PullConsumer = shared
        .stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: config.partition_filter(p.partition),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(config.ack_wait_s.max(1)),
                // Bounded: two fetches' worth unacknowledged at most.
                max_ack_pending: i64::try_from(config.fetch_max.max(1) * 2).unwrap_or(i64::MAX),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| NatsError::Consumer(p.partition, e.to_string()))?;
    let mut frames = MqttFrames::new(shared.hj212.clone(), shared.metrics.clone());
    tracing::info!(partition = p.partition, consumer = %name, "consuming partition");
    loop {
        let batch = tokio::select! {
            _ = p.stop.cancelled() => return Ok(Ended::Stopped),
            batch = consumer
                .batch()
                .max_messages(config.fetch_max.max(1))
                .expires(Duration::from_millis(500))
                .messages() => batch,
        };
        let mut batch = batch.map_err(|e| NatsError::Fetch(p.partition, e.to_string()))?;
        let mut messages = Vec::new();
        loop {
            let next = tokio::select! {
                // Fetched but not acknowledged: redelivered after ack_wait.
                _ = p.stop.cancelled() => return Ok(Ended::Stopped),
                next = batch.next() => next,
            };
            match next {
                Some(Ok(m)) => messages.push(m),
                Some(Err(e)) => {
                    tracing::debug!(partition = p.partition, error = %e, "fetch ended early");
                    break;
                }
                None => break,
            }
        }
        if messages.is_empty() {
            continue;
        }
        shared
            .metrics
            .received
            .fetch_add(messages.len() as u64, Relaxed);
        let mut records: Vec<Record> = Vec::with_capacity(messages.len());
        for m in &messages {
            // Only the stream's own subjects come here; anything else is decoded as it is
            // (and becomes a bad-topic dead letter).
            let subject = m.subject.as_str();
            let topic = config
                .topic_of(subject)
                .unwrap_or_else(|| subject.to_string());
            let record = decode::decode(&shared.root, &mut frames, &topic, &m.payload);
            // An HJ 212 frame stored without some values: its raw frame goes in too.
            records.extend(frames.take_partial());
            records.extend(record);
        }
        let fence = Some(Fence {
            partition: p.partition,
            revision: *p.revision.borrow(),
        });
        let (done, result) = oneshot::channel();
        let job = Job {
            records,
            fence,
            done,
        };
        if shared.jobs.send(job).await.is_err() {
            return Err(NatsError::WriterGone);
        }
        match result.await {
            Ok(Ok(_)) => {}
            Ok(Err(NotWritten::Fenced(e))) => {
                shared.metrics.nats.fenced.fetch_add(1, Relaxed);
                tracing::error!(partition = p.partition, error = %e, "batch fenced: another instance owns the partition; stopping it, nothing acknowledged");
                return Ok(Ended::Fenced);
            }
            Ok(Err(NotWritten::Shutdown)) | Err(_) => return Ok(Ended::Stopped),
        }
        // Committed: acknowledge. A lost ack means one redelivery, which the store deduplicates.
        let acks = messages.iter().map(|m| m.ack());
        let results = futures_util::future::join_all(acks).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        shared
            .metrics
            .nats
            .acked
            .fetch_add((results.len() - failed) as u64, Relaxed);
        if failed > 0 {
            tracing::warn!(
                partition = p.partition,
                failed,
                "acknowledgements not sent (redelivered and deduplicated)"
            );
        }
    }
}
