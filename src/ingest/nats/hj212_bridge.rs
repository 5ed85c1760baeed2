//! HJ 212 monitors on TCP when ingest comes from NATS. The TCP listener works as with MQTT
//! ingest (it hands each frame's record to a queue and sends the monitor its reply once told the
//! record is safe); here the queue's far end publishes each reading, event or status to the
//! device's subject, which the servers' mapping puts in the site's partition like an MQTT
//! device's message, and tells the listener once JetStream acknowledged it. The partition's
//! owner stores and judges it. Dead letters (frames refused) belong to no partition: they go
//! straight to this instance's store writer, unfenced.

use super::commit::Job;
use crate::ingest::writer::Item;
use crate::metrics::Metrics;
use crate::store::Record;
use async_nats::jetstream;
use dustwatch_protocol::TopicRoot;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Records queued between the listener and the publisher.
const QUEUE: usize = 256;

/// The subject NATS gives an MQTT topic: levels joined by `.`, a `.` inside a level as `//`.
pub fn subject_of(topic: &str) -> String {
    topic
        .split('/')
        .map(|level| level.replace('.', "//"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The queue to give the HJ 212 listener, and the task publishing what it receives.
pub fn spawn(
    js: jetstream::Context,
    root: TopicRoot,
    jobs: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (mpsc::Sender<Item>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(run(js, root, rx, jobs, metrics, shutdown));
    (tx, task)
}

async fn run(
    js: jetstream::Context,
    root: TopicRoot,
    mut items: mpsc::Receiver<Item>,
    jobs: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    while let Some(item) = items.recv().await {
        let Some(record) = item.record else {
            continue;
        };
        let safe = match device_message(&root, &record) {
            Some((topic, payload)) => publish(&js, &topic, payload, &shutdown).await,
            None => store(&jobs, record).await,
        };
        if safe {
            metrics.received.fetch_add(1, Relaxed);
            if let Some(tx) = item.on_commit {
                let _ = tx.send(());
            }
        }
        // Not safe: the monitor gets no reply and sends the frame again.
    }
}

/// The MQTT topic and payload a device would have sent for `record`; None for dead letters.
fn device_message(root: &TopicRoot, record: &Record) -> Option<(String, Vec<u8>)> {
    match record {
        Record::Reading {
            site,
            device,
            reading,
        } => Some((root.reading(site, device), reading.encode())),
        Record::Event {
            site,
            device,
            event,
        } => Some((root.event(site, device), serde_json::to_vec(event).ok()?)),
        Record::Status {
            site,
            device,
            status,
        } => Some((root.status(site, device), serde_json::to_vec(status).ok()?)),
        _ => None,
    }
}

async fn publish(
    js: &jetstream::Context,
    topic: &str,
    payload: Vec<u8>,
    shutdown: &CancellationToken,
) -> bool {
    let subject = subject_of(topic);
    let acked = async {
        js.publish(subject.clone(), payload.into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    tokio::select! {
        _ = shutdown.cancelled() => false,
        result = acked => match result {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "HJ 212 record not published to NATS; the monitor will send it again");
                false
            }
        },
    }
}

/// A dead letter into this instance's store, outside any partition.
async fn store(jobs: &mpsc::Sender<Job>, record: Record) -> bool {
    let (done, result) = oneshot::channel();
    let job = Job {
        records: vec![record],
        fence: None,
        done,
    };
    if jobs.send(job).await.is_err() {
        return false;
    }
    matches!(result.await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_becomes_the_subject_nats_gives_it() {
        assert_eq!(subject_of("dust/v1/s1/d1/reading"), "dust.v1.s1.d1.reading");
        assert_eq!(
            subject_of("dust/v1/site.a/d1/reading"),
            "dust.v1.site//a.d1.reading"
        );
    }
}
