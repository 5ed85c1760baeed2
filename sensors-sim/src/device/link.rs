//! The device's link to the platform: connect with a last will, reconnect with backoff, hand the
//! outbox to the connection up to the in-flight window, account acknowledgements, and leave
//! cleanly at the end of the run.

use super::outbox::{InFlight, Kind};
use super::Device;
use crate::net::{Connection, NetEvent};
use crate::scenario::Transport;
use crate::transport::{Link, Queued};
use dustwatch_protocol::{Status, StatusState};
use rand::Rng;
use std::sync::atomic::Ordering;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

impl Device {
    /// Publish a retained offline status and disconnect cleanly (no last will needed).
    pub(super) async fn finish(&mut self, shutdown: &CancellationToken) {
        if !self.connected {
            self.drop_conn(false);
            return;
        }
        if self.carries(Kind::Status) {
            let status = self.status(StatusState::Offline);
            self.outbox.push_front(status);
        }
        // Wait for the remaining acks (including the status) unless the run is cancelled again.
        while !(self.outbox.is_empty() && self.inflight.is_empty()) && self.connected {
            self.pump();
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !shutdown.is_cancelled() => break,
                ev = recv(&mut self.conn) => self.on_net(ev),
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)), if shutdown.is_cancelled() => break,
            }
        }
        if let Some(c) = self.conn.as_mut() {
            c.try_disconnect();
            // The link reports `Lost` once DISCONNECT is on the wire.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while let Some(ev) = c.recv().await {
                    if matches!(ev, NetEvent::Lost(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.conn = None;
        self.connected = false;
    }

    pub(super) fn connect(&mut self) {
        if self.plan.transport == Transport::Hj212Tcp {
            // `Sim::run` refuses to start TCP devices without a platform, so this is set.
            if let Some(platform) = &self.shared.platform {
                self.conn = Some(Link::Hj212Tcp(crate::hj212_tcp::Hj212Link::open(platform)));
            }
            self.reconnect_at = None;
            return;
        }
        let will = (
            self.topics[2].clone(),
            serde_json::to_vec(&Status {
                state: StatusState::Offline,
                fw: None,
                boot: None,
                interval_s: None,
                ts: None,
            })
            .unwrap_or_default(),
        );
        let login = self
            .shared
            .endpoint
            .device_login(&self.plan.site.info.id, &self.plan.id);
        self.conn = Some(Link::Mqtt(Connection::open_as(
            &self.shared.endpoint,
            &self.client_id,
            login,
            Some(will),
        )));
        self.reconnect_at = None;
    }

    /// Drop the connection; `crash` = as a pulled cable (last will fires), else quietly.
    pub(super) fn drop_conn(&mut self, crash: bool) {
        if let Some(c) = self.conn.take() {
            if crash {
                c.abort();
            }
        }
        if self.connected {
            self.connected = false;
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        // Whatever was not acknowledged goes back to the front, in order.
        while let Some(f) = self.inflight.pop_back() {
            self.outbox.push_front(f.msg);
        }
    }

    pub(super) fn on_net(&mut self, ev: Option<NetEvent>) {
        match ev {
            Some(NetEvent::Connected) => {
                self.connected = true;
                self.backoff = self.shared.backoff_min;
                self.stats.connected.fetch_add(1, Ordering::Relaxed);
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = self.conn.as_mut() {
                    c.try_subscribe(&self.topics[3]);
                }
                let status = self.status(StatusState::Online);
                self.push_status(status);
            }
            Some(NetEvent::Sent(pkid)) => {
                if let Some(f) = self.inflight.iter_mut().find(|f| f.pkid.is_none()) {
                    f.pkid = Some(pkid);
                }
                self.stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Some(NetEvent::Acked(pkid)) => {
                if let Some(i) = self.inflight.iter().position(|f| f.pkid == Some(pkid)) {
                    if let Some(f) = self.inflight.remove(i) {
                        if f.msg.kind == Kind::Reading {
                            self.stats.acked.fetch_add(1, Ordering::Relaxed);
                            self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Some(NetEvent::Unanswered(pkid)) => {
                if let Some(i) = self.inflight.iter().position(|f| f.pkid == Some(pkid)) {
                    if let Some(f) = self.inflight.remove(i) {
                        if f.msg.kind == Kind::Reading {
                            self.stats.unanswered.fetch_add(1, Ordering::Relaxed);
                            self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Some(NetEvent::Message(payload)) => self.on_command(&payload),
            Some(NetEvent::Lost(reason)) => self.lost(&reason),
            None => self.lost("connection task ended"),
        }
    }

    fn lost(&mut self, reason: &str) {
        let was_connected = self.connected;
        self.drop_conn(false);
        if !was_connected {
            // Never got in: back off exponentially, as firmware does.
            self.backoff = (self.backoff * 2).min(self.shared.backoff_max);
            self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(client = %self.client_id, reason, "connection lost");
        let jitter = self.jitter.gen_range(0.5..1.5);
        self.reconnect_at = Some(Instant::now() + self.backoff.mul_f64(jitter));
    }

    /// Hand queued messages to the MQTT client, up to the in-flight window.
    pub(super) fn pump(&mut self) {
        if !self.connected {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while self.inflight.len() < self.shared.window {
            let Some(msg) = self.outbox.pop_front() else {
                break;
            };
            let topic = match msg.kind {
                Kind::Reading if self.plan.transport == Transport::Hj212Mqtt => &self.topics[4],
                Kind::Reading => &self.topics[0],
                Kind::Event => &self.topics[1],
                Kind::Status => &self.topics[2],
                Kind::Reply => &self.topics[5],
            };
            match conn.try_publish(topic, msg.retain, &msg.payload) {
                Queued::Id(pkid) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    self.inflight.push_back(InFlight {
                        msg,
                        pkid: Some(pkid),
                    });
                }
                Queued::Later => self.inflight.push_back(InFlight { msg, pkid: None }),
                Queued::No => {
                    // Full or closed: keep it; the connection event will tell which.
                    self.outbox.push_front(msg);
                    break;
                }
            }
        }
    }
}

pub(super) async fn recv(conn: &mut Option<Link>) -> Option<NetEvent> {
    match conn {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}
