//! One MQTT connection of a device (or the city feed), driven on its own task.
//!
//! rumqttc's `EventLoop::poll` is not safe to cancel mid-flush, so it never sits in a `select!`
//! next to the device's timers: a small task polls it and forwards what the device needs over a
//! bounded channel. Dropping the connection (aborting that task) closes the socket without a
//! DISCONNECT, exactly like a firmware crash or a pulled cable, so the broker sends the last will.

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Unacknowledged QoS 1 publishes per connection.
    pub inflight: u16,
    pub keep_alive: Duration,
}

/// What a connection reports to its owner.
#[derive(Debug)]
pub enum NetEvent {
    /// CONNACK accepted.
    Connected,
    /// A publish went onto the wire with this packet id (in request order).
    Sent(u16),
    /// The broker acknowledged the publish with this packet id.
    Acked(u16),
    /// A message arrived on a subscribed topic.
    Message(Vec<u8>),
    /// The connection is gone (refused, dropped, or closed after DISCONNECT).
    Lost(String),
}

/// A live connection: the client handle and the task polling its event loop.
pub struct Connection {
    pub client: AsyncClient,
    pub events: mpsc::Receiver<NetEvent>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Start connecting; progress arrives as [`NetEvent`]s.
    pub fn open(
        endpoint: &Endpoint,
        client_id: &str,
        will: Option<(String, Vec<u8>)>,
    ) -> Connection {
        let mut opts = MqttOptions::new(client_id, endpoint.host.clone(), endpoint.port);
        opts.set_keep_alive(endpoint.keep_alive);
        // A persistent session keeps `cmd` messages queued while the device is away; the device
        // keeps its own store-and-forward buffer, so it never relies on the session for readings.
        opts.set_clean_session(false);
        opts.set_inflight(endpoint.inflight.max(1));
        if let (Some(u), Some(p)) = (&endpoint.username, &endpoint.password) {
            opts.set_credentials(u.clone(), p.clone());
        }
        if let Some((topic, payload)) = will {
            opts.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
        }
        let cap = usize::from(endpoint.inflight) + 8;
        let (client, eventloop) = AsyncClient::new(opts, cap);
        let (tx, rx) = mpsc::channel(cap + 8);
        let task = tokio::spawn(drive(eventloop, tx));
        Connection {
            client,
            events: rx,
            task,
        }
    }

    /// Drop the connection as a crash would: no DISCONNECT, so the last will fires.
    pub fn abort(self) {
        self.task.abort();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(mut eventloop: EventLoop, tx: mpsc::Sender<NetEvent>) {
    loop {
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if ack.code == ConnectReturnCode::Success {
                    NetEvent::Connected
                } else {
                    let _ = tx
                        .send(NetEvent::Lost(format!(
                            "connection refused: {:?}",
                            ack.code
                        )))
                        .await;
                    return;
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => NetEvent::Acked(ack.pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => NetEvent::Message(p.payload.to_vec()),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => NetEvent::Sent(pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = tx.send(NetEvent::Lost("disconnected".into())).await;
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(NetEvent::Lost(e.to_string())).await;
                return;
            }
        };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
