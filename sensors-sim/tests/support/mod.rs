//! Shared test support: a capturing MQTT subscriber and a simulator runner. Brokers come from
//! dustwatch-testkit (embedded rumqttd always, Mosquitto where installed).
#![allow(dead_code)]

use dustwatch_protocol::TopicRoot;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sensors_sim::{Scenario, Sim, SimOptions, Speed, Summary};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A message as the subscriber saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }
    /// `(site, device, kind)` of a device topic under `root/`.
    pub fn parts(&self) -> Option<(String, String, String)> {
        let p: Vec<&str> = self.topic.split('/').collect();
        (p.len() == 5).then(|| (p[2].to_string(), p[3].to_string(), p[4].to_string()))
    }
}

/// A subscriber that records everything on `filter`, resubscribing after each reconnect.
pub struct Capture {
    rx: mpsc::UnboundedReceiver<Msg>,
    pub msgs: Vec<Msg>,
    pub client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    /// Connect and subscribe; returns once the broker confirmed the subscription.
    pub async fn start(port: u16, filter: &str, persistent: bool) -> Capture {
        let id = format!("capture-{}-{}", port, filter.replace(['/', '#', '+'], "_"));
        let mut mo = MqttOptions::new(id, "127.0.0.1", port);
        mo.set_keep_alive(Duration::from_secs(30));
        mo.set_clean_session(!persistent);
        mo.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(mo, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let sub = client.clone();
        let filter = filter.to_string();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    // The broker may be restarting: rumqttc reconnects on the next poll.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("subscription confirmed within 30 s")
            .expect("capture task alive");
        Capture {
            rx,
            msgs: Vec::new(),
            client,
            task,
        }
    }

    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.msgs.push(m);
        }
    }

    /// Wait (event-driven; 120 s safety net against hangs) until `pred` holds on what arrived.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&[Msg]) -> bool) {
        let wait = async {
            loop {
                self.drain();
                if pred(&self.msgs) {
                    return;
                }
                match self.rx.recv().await {
                    Some(m) => self.msgs.push(m),
                    None => panic!("capture ended while waiting for {what}"),
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .is_err()
        {
            panic!(
                "gave up waiting for {what}; got {} messages",
                self.msgs.len()
            );
        }
    }

    /// Publish `payload` on `topic` (QoS 1), as the office does a command.
    pub async fn send(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Msg> {
        self.msgs
            .iter()
            .filter(|m| m.parts().is_some_and(|p| p.2 == kind))
            .collect()
    }

    /// Reading payloads per `root/site/device`, in arrival order.
    pub fn readings_by_device(&self) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut out: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for m in self.of_kind("reading") {
            let device = m.topic.trim_end_matches("/reading").to_string();
            out.entry(device).or_default().push(m.payload.clone());
        }
        out
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for a fast test run against `port`.
pub fn options(port: u16, root: &str, seed: u64) -> SimOptions {
    SimOptions {
        port,
        topic_root: TopicRoot::new(root),
        speed: Speed::Max,
        seed,
        client_prefix: root.replace('/', "-"),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        connect_spread: Duration::ZERO,
        ..Default::default()
    }
}

/// Run a scenario to its end.
pub async fn run(scenario: &str, options: SimOptions) -> Summary {
    let s = Scenario::load(scenario).expect("scenario loads");
    Sim::new(s, options)
        .run(CancellationToken::new())
        .await
        .expect("simulation runs")
}

/// Each broker this machine has: the embedded rumqttd always, Mosquitto when installed.
pub fn brokers() -> Vec<(&'static str, u16, Option<dustwatch_testkit::Mosquitto>)> {
    let mut out = Vec::new();
    let embedded = dustwatch_testkit::embedded_broker();
    out.push(("rumqttd", embedded.addr().port(), None));
    if let Some(m) = dustwatch_testkit::Mosquitto::start() {
        out.push(("mosquitto", m.port(), Some(m)));
    }
    out
}
