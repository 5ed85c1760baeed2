//! Ingest: subscribe to the device topics with QoS 1 and a persistent session, decode, hand the
//! records to the store writer through a bounded queue, and acknowledge each message only after
//! the writer committed it. A slow store slows the broker down (backpressure); memory stays
//! bounded by the queue size at any input rate.

pub mod decode;
pub mod hj212;
pub mod hj212_tcp;
pub mod session;
pub mod writer;

use crate::metrics::Metrics;
use crate::store::StoreWriter;
use dustwatch_mqtt::{ConnectOptions, Login, OptionsError, TlsSettings};
use dustwatch_protocol::TopicRoot;
use rumqttc::QoS;
use serde::{Deserialize, Serialize};
use session::{Incoming, Session, SessionError, SessionOptions};
use std::path::PathBuf;
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
    /// Broker URL, `mqtt://host:port`, or `mqtts://host:port` for TLS. Default
    /// `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// Client id; the persistent session is keyed by it, so keep it stable across restarts. The
    /// publisher connects as `<client_id>-pub`. Default `dustwatch-aggregator`.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Username of the publisher connection (same password). Default: `username`. A broker that
    /// takes the username as the client id (Mosquitto's `use_username_as_clientid`) needs one of
    /// its own, as `dustwatch broker-config` generates.
    pub publisher_username: Option<String>,
    /// `mqtts://`: PEM file of the CA that signed the broker's certificate. Default none: the
    /// system's CA certificates.
    pub ca_file: Option<PathBuf>,
    /// `mqtts://`: PEM client certificate, for brokers that require one. Default none.
    pub client_cert: Option<PathBuf>,
    /// `mqtts://`: PEM private key of `client_cert`. Default none.
    pub client_key: Option<PathBuf>,
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
            publisher_username: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            topic_root: dustwatch_protocol::topic::DEFAULT_ROOT.into(),
            keep_alive_s: 30,
        }
    }
}

impl MqttConfig {
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }

    /// The ingest connection to `url` (the configured one unless a tool overrides it): client
    /// id, login, keep-alive and TLS.
    pub fn connect_options(&self, url: &str) -> Result<ConnectOptions, IngestError> {
        if self.username.is_some() != self.password.is_some() {
            return Err(IngestError::HalfLogin);
        }
        let login = self.username.clone().zip(self.password.clone());
        Ok(
            ConnectOptions::new(url, self.client_id.clone(), &self.tls())?
                .with_login(login.map(|(username, password)| Login { username, password }))
                .with_keep_alive(Duration::from_secs(self.keep_alive_s.max(5))),
        )
    }

    /// The publisher connection: client id `<client_id>-pub`, logged in as `publisher_username`
    /// when set.
    pub fn publisher_options(&self) -> Result<ConnectOptions, IngestError> {
        let mut o = self
            .connect_options(&self.url)?
            .with_client_id(format!("{}-pub", self.client_id));
        if let (Some(login), Some(user)) = (o.login.as_mut(), &self.publisher_username) {
            login.username = user.clone();
        }
        Ok(o)
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
    #[error("[mqtt]: {0}")]
    Options(#[from] OptionsError),
    #[error("[mqtt]: set both username and password, or neither")]
    HalfLogin,
    #[error("store writer thread could not start: {0}")]
    Writer(std::io::Error),
    #[error("HJ 212 listener could not start: {0}")]
    Hj212Listener(std::io::Error),
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
                    // Two keep-alives of silence after our pings: the broker is gone.
                    if s.reader.silent_for() > options.connect.keep_alive * 2 {
                        break SessionError::KeepAlive(s.reader.silent_for());
                    }
                    s.writer.tick();
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

/// Wait `backoff` before the next connection attempt; false when shutdown came first.
async fn pause(shutdown: &CancellationToken, backoff: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(backoff) => true,
    }
}
