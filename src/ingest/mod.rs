//! Ingest: subscribe to the device topics with QoS 1 and a persistent session, decode, hand the
//! records to the store writer through a bounded queue, and acknowledge each message only after
//! the writer committed it. A slow store slows the broker down (backpressure); memory stays
//! bounded by the queue size at any input rate.

pub mod decode;
pub mod hj212;
pub mod hj212_tcp;
pub mod writer;

use crate::metrics::Metrics;
use crate::store::StoreWriter;
use dustwatch_protocol::TopicRoot;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use writer::{Ack, CommittedSink, Item};

/// How ingest connects to the broker (`[mqtt]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker URL, `mqtt://host:port`. Default `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// Client id; the persistent session is keyed by it, so keep it stable across restarts.
    /// Default `dustwatch-aggregator`.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Topic root of contract v1. Default `dust/v1`.
    pub topic_root: String,
    /// Keep-alive, seconds. Default 30.
    pub keep_alive_s: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "dustwatch-aggregator".into(),
            username: None,
            password: None,
            topic_root: dustwatch_protocol::topic::DEFAULT_ROOT.into(),
            keep_alive_s: 30,
        }
    }
}

/// Ingest pipeline sizing (`[ingest]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages waiting for the store writer before ingest stops reading from the broker.
    /// Default 20 000.
    pub queue: usize,
    /// Most records in one store transaction. Default 5 000.
    pub batch_max: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue: 20_000,
            batch_max: 5_000,
        }
    }
}

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("bad broker URL `{url}`: {reason} (expected mqtt://host:port)")]
    BadUrl { url: String, reason: String },
    #[error("store writer thread could not start: {0}")]
    Writer(std::io::Error),
    #[error("HJ 212 listener could not start: {0}")]
    Hj212Listener(std::io::Error),
}

/// Parse `mqtt://host:port` (also `tcp://`, or bare `host:port`) into host and port.
pub fn parse_broker_url(url: &str) -> Result<(String, u16), IngestError> {
    let bad = |reason: &str| IngestError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .unwrap_or(url);
    if rest.contains("://") {
        return Err(bad("only plain mqtt:// is supported"));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
    let port: u16 = port
        .trim_end_matches('/')
        .parse()
        .map_err(|_| bad("port is not a number"))?;
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
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
    let (host, port) = parse_broker_url(&mqtt.url)?;
    let mut options = MqttOptions::new(mqtt.client_id.clone(), host, port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(mqtt.keep_alive_s.max(5)))
        .set_max_packet_size(256 * 1024, 256 * 1024)
        // Every ack passes through this channel; it must hold all acks that can be owed at once
        // (queue + one batch) so try_ack never fails.
        .set_request_channel_capacity(config.queue + config.batch_max + 1024);
    if let (Some(u), Some(p)) = (&mqtt.username, &mqtt.password) {
        options.set_credentials(u.clone(), p.clone());
    }
    let (client, eventloop) = AsyncClient::new(options, config.queue + config.batch_max + 1024);

    let (item_tx, item_rx) = mpsc::channel::<Item>(config.queue.max(1));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Vec<Ack>>();
    let writer_metrics = metrics.clone();
    let batch_max = config.batch_max.max(1);
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer::run(store, item_rx, ack_tx, committed, writer_metrics, batch_max))
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
        client, eventloop, root, frames, item_tx, ack_rx, writer, metrics, shutdown,
    ));
    Ok(Ingest {
        task,
        hj212: hj212_listener,
    })
}

#[allow(clippy::too_many_arguments)]
async fn mqtt_loop(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    root: TopicRoot,
    mut frames: hj212::MqttFrames,
    item_tx: mpsc::Sender<Item>,
    mut ack_rx: mpsc::UnboundedReceiver<Vec<Ack>>,
    writer: std::thread::JoinHandle<()>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    // Acks are only valid on the connection that received the message; after a reconnect the
    // broker redelivers unacknowledged messages and the store deduplicates them.
    let mut generation: u64 = 0;
    let mut backoff = Duration::from_millis(200);
    let mut suback_count = 0;
    // One filter for everything under the root: a broker keeps one ordered stream per
    // subscription, so a device's events stay in order with its readings (rumqttd keeps a log per
    // filter and drains them at different paces). Commands, our own alerts and reports are
    // acknowledged and skipped by `decode`.
    let filters = [format!("{}/#", root.as_str())];
    let mut owed = OwedAcks::default();
    loop {
        // Acks go to the client's request channel only as fast as the event loop drains it.
        owed.flush(&client, generation);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(acks) = ack_rx.recv() => owed.push(acks),
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    generation += 1;
                    suback_count = 0;
                    backoff = Duration::from_millis(200);
                    metrics.reconnects.fetch_add(1, Relaxed);
                    metrics.mqtt_connected.store(1, Relaxed);
                    tracing::info!(session_present = ack.session_present, "connected to MQTT broker");
                    for f in &filters {
                        if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                            tracing::error!(error = %e, filter = %f, "subscribe failed");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    metrics.received.fetch_add(1, Relaxed);
                    let record = decode::decode(&root, &mut frames, &p.topic, &p.payload);
                    let ack = (p.qos != QoS::AtMostOnce).then(|| Ack::for_publish(generation, p));
                    let item = Item { record, ack, on_commit: None, received: Instant::now() };
                    // Waits while the queue is full: the broker holds the rest meanwhile.
                    if item_tx.send(item).await.is_err() {
                        tracing::error!("store writer stopped; ingest ends");
                        break;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    suback_count += 1;
                    if suback_count == filters.len() {
                        metrics.mqtt_subscribed.store(1, Relaxed);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    metrics.mqtt_connected.store(0, Relaxed);
                    metrics.mqtt_subscribed.store(0, Relaxed);
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    // Shutdown: stop taking messages, let the writer commit what it holds, send those acks,
    // then disconnect. Messages arriving meanwhile stay unacknowledged and are redelivered.
    drop(item_tx);
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    let mut acks_open = true;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            acks = ack_rx.recv(), if acks_open => match acks {
                Some(acks) => {
                    owed.push(acks);
                    owed.flush(&client, generation);
                }
                None => {
                    owed.flush(&client, generation);
                    acks_open = false;
                    let _ = client.try_disconnect();
                }
            },
            ev = eventloop.poll() => match ev {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => owed.flush(&client, generation),
            },
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

/// Acknowledgements committed by the writer and not yet handed to the MQTT client. Bounded by
/// the ingest queue plus one batch: an ack exists only for a message that went through it.
#[derive(Default)]
struct OwedAcks {
    queue: std::collections::VecDeque<Ack>,
}

impl OwedAcks {
    fn push(&mut self, acks: Vec<Ack>) {
        self.queue.extend(acks);
    }

    /// Hand acks over in order until the client's channel is full; the rest wait for the next
    /// poll of the event loop. Acks of an earlier connection are dropped (the broker redelivers
    /// those messages and the store deduplicates them).
    fn flush(&mut self, client: &AsyncClient, generation: u64) {
        while let Some(ack) = self.queue.front() {
            if ack.generation == generation && client.try_ack(&ack.publish).is_err() {
                break;
            }
            self.queue.pop_front();
        }
    }
}
