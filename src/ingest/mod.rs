//! Ingest: subscribe to the device topics with QoS 1 and a persistent session, decode, hand the
//! records to the store writer through a bounded queue, and acknowledge each message only after
//! the writer committed it. A slow store slows the broker down (backpressure); memory stays
//! bounded by the queue size at any input rate.

pub mod decode;
pub mod hj212;
pub mod hj212_tcp;
pub mod mqtt_config;
pub mod nats;
pub mod session;
pub mod writer;
#[cfg(test)]
mod writer_tests;

use crate::metrics::Metrics;
use crate::store::StoreWriter;
use dustwatch_mqtt::Tick;
use dustwatch_protocol::TopicRoot;
use rumqttc::QoS;
use serde::{Deserialize, Serialize};
use session::{Incoming, Session, SessionError, SessionOptions};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use writer::{Ack, CommittedSink, Item, WriterOptions};

pub use mqtt_config::{MqttConfig, MqttConfigError};

/// Ingest pipeline sizing (`[ingest]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages waiting for the store writer before ingest stops reading from the broker.
    /// Default 20 000.
    pub queue: usize,
    /// Most records in one store transaction. Default 5 000.
    pub batch_max: usize,
    /// Readings, events, statuses and city levels stamped further than this ahead of the wall
    /// clock are `future_timestamp` dead letters. Default 300 s.
    pub max_future_s: u64,
    /// Where device messages come from: `mqtt` (`[mqtt]`, the default) or `nats` (`[nats]`, a
    /// JetStream cluster shared by several instances).
    pub source: nats::Source,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue: 20_000,
            batch_max: 5_000,
            max_future_s: 300,
            source: nats::Source::Mqtt,
        }
    }
}

#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Mqtt(#[from] MqttConfigError),
    #[error("store writer thread could not start: {0}")]
    Writer(std::io::Error),
    #[error("HJ 212 listener could not start: {0}")]
    Hj212Listener(std::io::Error),
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
}

/// Handles to a running ingest.
pub struct Ingest {
    pub task: tokio::task::JoinHandle<()>,
    /// The HJ 212 TCP listener, when configured.
    pub hj212: Option<hj212_tcp::Hj212Listener>,
}

/// HJ 212 ingest: the registry's `[[device]]` tables, and the bound TCP listener with its
/// settings when `[hj212] listen` is set.
#[derive(Default)]
pub struct Hj212Setup {
    pub devices: Arc<hj212::Hj212Devices>,
    pub listener: Option<(tokio::net::TcpListener, hj212_tcp::Hj212Config)>,
}

/// Start ingest: the MQTT loop as a task and the store writer on its own thread. Stops when
/// `shutdown` is cancelled, after the writer committed what it holds.
pub fn start(
    mqtt: &MqttConfig,
    config: &IngestConfig,
    store: Box<dyn StoreWriter>,
    committed: Option<CommittedSink>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    hj212: Hj212Setup,
) -> Result<Ingest, IngestError> {
    let session = SessionOptions {
        connect: mqtt.connect_options(&mqtt.url)?,
        connect_timeout: Duration::from_secs(10),
    };
    let (item_tx, item_rx) = mpsc::channel::<Item>(config.queue.max(1));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Vec<Ack>>();
    let writer_metrics = metrics.clone();
    let writer_options = WriterOptions {
        batch_max: config.batch_max.max(1),
        max_future_ms: i64::try_from(config.max_future_s.saturating_mul(1000)).unwrap_or(i64::MAX),
        root: TopicRoot::new(&mqtt.topic_root),
    };
    // Retention runs on the writer thread between batches; while no message comes, an empty
    // item now and then gives it the turn.
    let idle_tick = (store.retention_every() / 4).max(Duration::from_millis(250));
    tokio::spawn(tick_writer(item_tx.clone(), idle_tick, shutdown.clone()));
    let writer_shutdown = shutdown.clone();
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            writer::run(
                store,
                item_rx,
                ack_tx,
                committed,
                writer_metrics,
                writer_options,
                writer_shutdown,
            )
        })
        .map_err(IngestError::Writer)?;

    let hj212_listener = match hj212.listener {
        Some((listener, config)) => Some(
            hj212_tcp::spawn(
                listener,
                config,
                hj212.devices.clone(),
                item_tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            )
            .map_err(IngestError::Hj212Listener)?,
        ),
        None => None,
    };
    let frames = hj212::MqttFrames::new(hj212.devices, metrics.clone());

    let root = TopicRoot::new(&mqtt.topic_root);
    let task = tokio::spawn(mqtt_loop(
        session, root, frames, item_tx, ack_rx, writer, metrics, shutdown,
    ));
    Ok(Ingest {
        task,
        hj212: hj212_listener,
    })
}

#[allow(clippy::too_many_arguments)]
async fn mqtt_loop(
    options: SessionOptions,
    root: TopicRoot,
    mut frames: hj212::MqttFrames,
    item_tx: mpsc::Sender<Item>,
    mut ack_rx: mpsc::UnboundedReceiver<Vec<Ack>>,
    writer: std::thread::JoinHandle<()>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    // One filter for everything under the root: a broker keeps one ordered stream per
    // subscription, so a device's events stay in order with its readings (rumqttd keeps a log per
    // filter and drains them at different paces). Commands, our own alerts and reports are
    // acknowledged and skipped by `decode`.
    let filter = format!("{}/#", root.as_str());
    // Acks are only valid on the connection that received the message; after a reconnect the
    // broker redelivers unacknowledged messages and the store deduplicates them.
    let mut generation: u64 = 0;
    let mut backoff = Duration::from_millis(200);
    let mut session = None;
    'connection: while !shutdown.is_cancelled() {
        let mut s = match session.take() {
            Some(s) => s,
            None => {
                let attempt = tokio::select! {
                    _ = shutdown.cancelled() => break 'connection,
                    attempt = Session::connect(&options, &filter) => attempt,
                };
                match attempt {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection failed");
                        if !pause(&shutdown, backoff).await {
                            break 'connection;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue 'connection;
                    }
                }
            }
        };
        generation += 1;
        backoff = Duration::from_millis(200);
        metrics.reconnects.fetch_add(1, Relaxed);
        metrics.mqtt_connected.store(1, Relaxed);
        tracing::info!(
            session_present = s.session_present,
            "connected to MQTT broker"
        );
        let mut tick = tokio::time::interval(options.connect.keep_alive / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lost = loop {
            tokio::select! {
                // Acknowledgements first: each one lets the broker send another message.
                biased;
                _ = shutdown.cancelled() => {
                    session = Some(s);
                    break 'connection;
                }
                Some(acks) = ack_rx.recv() => s.writer.ack_all(&acks, generation),
                written = s.writer.flush(), if s.writer.has_output() => {
                    if let Err(e) = written {
                        break e;
                    }
                }
                _ = tick.tick() => {
                    let sent = s.writer.take_wrote();
                    match s.reader.keep_alive_tick(sent) {
                        Tick::TimedOut => break SessionError::KeepAlive(s.reader.silent_for()),
                        Tick::Ping => s.writer.ping(),
                        Tick::Idle => {}
                    }
                }
                incoming = s.reader.next() => {
                    let (record, ack) = match incoming {
                        Ok(Incoming::Message { topic, payload, qos, pkid }) => {
                            let record = decode::decode(&root, &mut frames, &topic, &payload);
                            (record, (qos != QoS::AtMostOnce).then_some(pkid))
                        }
                        Ok(Incoming::Oversized { topic, prefix, size, qos, pkid }) => {
                            let record = decode::oversized(&topic, prefix, size);
                            (Some(record), (qos != QoS::AtMostOnce).then_some(pkid))
                        }
                        Ok(Incoming::Subscribed) => {
                            metrics.mqtt_subscribed.store(1, Relaxed);
                            continue;
                        }
                        Err(e) => break e,
                    };
                    metrics.received.fetch_add(1, Relaxed);
                    // An HJ 212 frame stored without some values: its raw frame goes first,
                    // so the message's acknowledgement (on the reading) covers both.
                    if let Some(partial) = frames.take_partial() {
                        let item = Item { record: Some(partial), ack: None, on_commit: None, received: Instant::now() };
                        if item_tx.send(item).await.is_err() {
                            tracing::error!("store writer stopped; ingest ends");
                            break 'connection;
                        }
                    }
                    let ack = ack.map(|pkid| Ack { generation, pkid });
                    let item = Item { record, ack, on_commit: None, received: Instant::now() };
                    // Waits while the queue is full and reads nothing meanwhile: the broker holds
                    // the rest.
                    if item_tx.send(item).await.is_err() {
                        tracing::error!("store writer stopped; ingest ends");
                        break 'connection;
                    }
                }
            }
        };
        metrics.mqtt_connected.store(0, Relaxed);
        metrics.mqtt_subscribed.store(0, Relaxed);
        tracing::warn!(error = %lost, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
        if !pause(&shutdown, backoff).await {
            break 'connection;
        }
    }
    // Shutdown: stop taking messages, let the writer commit what it holds, send those acks,
    // then disconnect. Messages arriving meanwhile stay unacknowledged and are redelivered.
    drop(item_tx);
    if let Some(mut s) = session {
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(acks) = ack_rx.recv().await {
                s.writer.ack_all(&acks, generation);
                s.writer.flush().await?;
            }
            s.writer.disconnect();
            s.writer.flush().await
        })
        .await;
        match drained {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "acknowledgements at shutdown not sent (broker will redeliver)")
            }
            Err(_) => tracing::warn!(
                "store writer slow at shutdown; remaining messages will be redelivered"
            ),
        }
    }
    if tokio::task::spawn_blocking(move || writer.join())
        .await
        .is_err()
    {
        tracing::error!("store writer panicked");
    }
    metrics.mqtt_connected.store(0, Relaxed);
    tracing::info!("ingest stopped");
}

/// Send the writer an empty item every `every` until shutdown; skipped while the queue is full
/// (the writer is busy then, and checks retention between batches anyway).
async fn tick_writer(items: mpsc::Sender<Item>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let idle = Item { record: None, ack: None, on_commit: None, received: Instant::now() };
                if let Err(mpsc::error::TrySendError::Closed(_)) = items.try_send(idle) {
                    return;
                }
            }
        }
    }
}

/// Wait `backoff` before the next connection attempt; false when shutdown came first.
async fn pause(shutdown: &CancellationToken, backoff: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(backoff) => true,
    }
}
