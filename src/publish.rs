//! The aggregator's own MQTT publisher: alert states, daily reports and city level changes go out
//! through it (QoS 1, retained where the contract says so). Publishing never blocks the caller.

use crate::ingest::{IngestError, MqttConfig, MqttConfigError};
use dustwatch_protocol::TopicRoot;
use rumqttc::{AsyncClient, Event, QoS};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages the publisher can hold while the broker is away.
const CAPACITY: usize = 10_000;

#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
    root: TopicRoot,
    dropped: Arc<AtomicU64>,
}

impl Publisher {
    /// Connect (in the background, with retries) and return the publisher and its task.
    pub fn start(
        mqtt: &MqttConfig,
        shutdown: CancellationToken,
    ) -> Result<(Publisher, tokio::task::JoinHandle<()>), IngestError> {
        let mut options = mqtt.publisher_options()?.rumqttc();
        options
            .set_clean_session(false)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, CAPACITY);
        let task_client = client.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    ev = eventloop.poll() => match ev {
                        Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            backoff = Duration::from_millis(200);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "publisher lost the broker; retrying");
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            }
            // Flush what is queued (alert closes at shutdown), then say goodbye.
            let _ = task_client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                while let Ok(ev) = eventloop.poll().await {
                    if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        });
        Ok((
            Publisher {
                client,
                root: TopicRoot::new(&mqtt.topic_root),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            task,
        ))
    }

    pub fn root(&self) -> &TopicRoot {
        &self.root
    }

    /// Queue a QoS 1 publish; false (and counted) when the queue is full.
    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => true,
            Err(e) => {
                self.dropped.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "publish queue full; message dropped");
                false
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// Connect, publish one retained QoS 1 message, wait for the broker's acknowledgement, disconnect.
/// For command-line tools (`dustwatch level set`).
pub async fn publish_once(
    url: &str,
    mqtt: &MqttConfig,
    topic: &str,
    payload: Vec<u8>,
) -> Result<(), PublishError> {
    let options = mqtt
        .connect_options(url)?
        .with_client_id(format!("{}-cli-{}", mqtt.client_id, std::process::id()))
        .with_keep_alive(Duration::from_secs(10))
        .rumqttc();
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    client
        .publish(topic, QoS::AtLeastOnce, true, payload)
        .await
        .map_err(|e| PublishError::Broker(e.to_string()))?;
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(rumqttc::Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(PublishError::Broker(format!("{url}: {e}"))),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| PublishError::Broker(format!("{url}: no acknowledgement within 10 s")))??;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Config(#[from] MqttConfigError),
    #[error("MQTT: {0}")]
    Broker(String),
}
