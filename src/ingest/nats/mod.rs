//! Ingest from a NATS JetStream cluster, for several aggregator instances sharing the work.
//! Devices speak MQTT to any node's MQTT listener; the servers' subject mapping puts each site
//! in one of P partitions and one stream captures them all. Each instance holds leases on some
//! partitions in a key-value bucket (compare-and-set, expiring with the bucket's `max_age`),
//! consumes those through durable pull consumers, and commits under the lease's revision as a
//! fencing token, so a paused former owner cannot write after the new one has.
//!
//! Files by job: `config` (settings, server mapping, subject to topic), `leases` (who should own
//! what, without I/O), `driver` (the lease round trips), `consumer` (one partition), `commit`
//! (the store writer thread).

pub mod commit;
pub mod config;
pub mod consumer;
pub mod driver;
pub mod hj212_bridge;
pub mod leases;

use super::hj212::Hj212Devices;
use super::writer::{CommittedSink, WriterOptions};
use super::IngestConfig;
use crate::metrics::Metrics;
use crate::store::StoreWriter;
use async_nats::jetstream::{self, kv, stream};
use dustwatch_protocol::TopicRoot;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{NatsConfig, NatsConfigError, Source};

#[derive(Debug, Error)]
pub enum NatsError {
    #[error(transparent)]
    Config(#[from] NatsConfigError),
    #[error("[nats] servers: `{0}` is not a NATS URL: {1}")]
    Url(String, String),
    #[error("cannot connect to NATS {servers:?}: {detail}")]
    Connect {
        servers: Vec<String>,
        detail: String,
    },
    #[error("JetStream stream `{0}`: {1}")]
    Stream(String, String),
    #[error("lease bucket `{0}`: {1}")]
    Bucket(String, String),
    #[error("partition {0}: cannot create its consumer: {1}")]
    Consumer(u32, String),
    #[error("partition {0}: fetching failed: {1}")]
    Fetch(u32, String),
    #[error("the store writer stopped")]
    WriterGone,
    #[error("store writer thread could not start: {0}")]
    Writer(std::io::Error),
    #[error("HJ 212 listener: {0}")]
    Hj212Listener(std::io::Error),
}

/// Everything NATS ingest needs besides its settings.
pub struct Setup {
    pub root: TopicRoot,
    pub store: Box<dyn StoreWriter>,
    pub committed: Option<CommittedSink>,
    pub hj212: Arc<Hj212Devices>,
    pub metrics: Arc<Metrics>,
    /// The rules engine to hand each partition's sites to (none when rules are off).
    pub rules: Option<crate::rules::RulesHandle>,
    /// HJ 212 monitors on TCP (`[hj212] listen`): their records go through the partitions.
    pub hj212_listener: Option<(
        tokio::net::TcpListener,
        crate::ingest::hj212_tcp::Hj212Config,
    )>,
}

/// NATS ingest, running.
pub struct Started {
    /// Ends after the shutdown, once leases are given back and the writer committed what it held.
    pub task: tokio::task::JoinHandle<()>,
    pub hj212: Option<crate::ingest::hj212_tcp::Hj212Listener>,
    /// The connection to the cluster, for what else the instances say to each other.
    pub client: async_nats::Client,
}

/// This instance's default name: host name and process id, as a bucket key allows.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    format!("{host}-{}", std::process::id())
}

/// Connect, make sure the stream and the lease bucket exist, start the store writer thread, the
/// lease driver and the HJ 212 listener if there is one.
pub async fn start(
    config: &NatsConfig,
    ingest: &IngestConfig,
    setup: Setup,
    shutdown: CancellationToken,
) -> Result<Started, NatsError> {
    config.validate()?;
    let config = Arc::new(config.clone());
    let addrs = config
        .servers
        .iter()
        .map(|s| {
            s.parse::<async_nats::ServerAddr>()
                .map_err(|e| NatsError::Url(s.clone(), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metrics = setup.metrics.clone();
    let event_metrics = metrics.clone();
    // Connects in the background and keeps reconnecting: a cluster that is down or still
    // electing its leaders at start delays ingest, it does not stop the aggregator.
    let client = async_nats::ConnectOptions::new()
        .name("dustwatch")
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let metrics = event_metrics.clone();
            async move {
                match event {
                    async_nats::Event::Connected => metrics.nats.connected.store(1, Relaxed),
                    async_nats::Event::Disconnected => {
                        metrics.nats.connected.store(0, Relaxed);
                        tracing::warn!("NATS connection lost; reconnecting");
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        })
        .connect(addrs)
        .await
        .map_err(|e| NatsError::Connect {
            servers: config.servers.clone(),
            detail: e.to_string(),
        })?;
    let js = jetstream::new(client.clone());

    let (jobs_tx, jobs_rx) = mpsc::channel(4);
    let writer_options = WriterOptions {
        batch_max: config.fetch_max.max(1),
        max_future_ms: i64::try_from(ingest.max_future_s.saturating_mul(1000)).unwrap_or(i64::MAX),
        root: setup.root.clone(),
    };
    let writer_shutdown = shutdown.clone();
    let writer_metrics = metrics.clone();
    let store = setup.store;
    let committed = setup.committed;
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            commit::run(
                store,
                jobs_rx,
                committed,
                writer_metrics,
                writer_options,
                writer_shutdown,
            )
        })
        .map_err(NatsError::Writer)?;

    let me = config.instance.clone().unwrap_or_else(default_instance);
    let root = setup.root;
    let hj212 = setup.hj212;
    let rules = setup.rules;
    let hj212_listener = match setup.hj212_listener {
        Some((listener, hj212_config)) => {
            let (items, _bridge) = hj212_bridge::spawn(
                js.clone(),
                root.clone(),
                jobs_tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            Some(
                crate::ingest::hj212_tcp::spawn(
                    listener,
                    hj212_config,
                    hj212.clone(),
                    items,
                    metrics.clone(),
                    shutdown.clone(),
                )
                .map_err(NatsError::Hj212Listener)?,
            )
        }
        None => None,
    };
    let task = tokio::spawn(async move {
        if let Some((stream, kv)) = prepare(&js, &config, &shutdown).await {
            let shared = consumer::Shared {
                stream,
                config: config.clone(),
                root,
                hj212,
                jobs: jobs_tx,
                metrics,
                rules,
            };
            tracing::info!(instance = %me, partitions = config.partitions, "NATS ingest starting");
            let leases = leases::Leases::new(me, config.partitions, config.lease_ttl());
            let every = (config.lease_ttl() / 3).max(Duration::from_millis(500));
            driver::Driver::new(kv, leases, shared, every)
                .run(shutdown)
                .await;
        } else {
            drop(jobs_tx);
        }
        if tokio::task::spawn_blocking(move || writer.join())
            .await
            .is_err()
        {
            tracing::error!("store writer panicked");
        }
    });
    Ok(Started {
        task,
        hj212: hj212_listener,
        client,
    })
}

/// Make sure the stream and the lease bucket exist, retrying until the cluster answers (it may
/// still be starting or electing); `None` when shutdown came first.
async fn prepare(
    js: &jetstream::Context,
    config: &NatsConfig,
    shutdown: &CancellationToken,
) -> Option<(stream::Stream, kv::Store)> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match try_prepare(js, config).await {
            Ok(ready) => return Some(ready),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "NATS JetStream not ready")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn try_prepare(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<(stream::Stream, kv::Store), NatsError> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            // A message is gone once its partition's consumer acknowledged it: disk holds the
            // backlog only, bounded by max_bytes (then new messages are refused, old ones kept).
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            max_bytes: config.stream_max_bytes,
            num_replicas: config.replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| NatsError::Stream(config.stream.clone(), e.to_string()))?;
    let kv = match js.get_key_value(config.lease_bucket.clone()).await {
        Ok(kv) => kv,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: config.lease_bucket.clone(),
                history: 1,
                // Every key (lease or announcement) expires unless rewritten within the TTL.
                max_age: config.lease_ttl(),
                num_replicas: config.replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::Bucket(config.lease_bucket.clone(), e.to_string()))?,
    };
    Ok((stream, kv))
}
