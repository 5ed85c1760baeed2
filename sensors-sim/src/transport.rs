//! How a device reaches its platform: an MQTT connection to the broker ([`crate::net`]) or an
//! HJ 212-2017 TCP connection straight to a platform ([`crate::hj212_tcp`]). The device's
//! firmware loop is one and the same; only this link varies. Both report [`NetEvent`]s.

use crate::hj212_tcp::Hj212Link;
use crate::net::{Connection, NetEvent};

// MQTT is the common link and lives inline in its device: boxing it to shrink the rare TCP
// variant would cost every device an allocation and a pointer hop.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Link {
    Mqtt(Connection),
    Hj212Tcp(Hj212Link),
}

/// What became of a message handed to a link.
pub(crate) enum Queued {
    /// The link cannot take it now: keep it.
    No,
    /// On its way with this id (MQTT: the packet id, known at once).
    Id(u16),
    /// On its way; the id follows as [`NetEvent::Sent`] (HJ 212 over TCP).
    Later,
}

impl Link {
    /// The next event of the link. Cancel-safe; `None` when the link is gone.
    pub(crate) async fn recv(&mut self) -> Option<NetEvent> {
        match self {
            Link::Mqtt(c) => c.recv().await,
            Link::Hj212Tcp(l) => l.events.recv().await,
        }
    }

    /// Hand one message to the link. HJ 212 over TCP has no topics: the payload is the frame.
    pub(crate) fn try_publish(&mut self, topic: &str, retain: bool, payload: &[u8]) -> Queued {
        match self {
            Link::Mqtt(c) => match c.publish(topic, retain, payload) {
                Some(pkid) => Queued::Id(pkid),
                None => Queued::No,
            },
            Link::Hj212Tcp(l) => {
                if l.try_send(payload.to_vec()) {
                    Queued::Later
                } else {
                    Queued::No
                }
            }
        }
    }

    /// Subscribe to commands (MQTT only: a platform's HJ 212 requests are not simulated).
    pub(crate) fn try_subscribe(&mut self, topic: &str) {
        if let Link::Mqtt(c) = self {
            c.subscribe(topic);
        }
    }

    /// Close cleanly after what is queued; `Lost` follows.
    pub(crate) fn try_disconnect(&mut self) {
        match self {
            Link::Mqtt(c) => c.disconnect(),
            Link::Hj212Tcp(l) => l.try_disconnect(),
        }
    }

    /// Drop the connection as a crash or a pulled cable would.
    pub(crate) fn abort(self) {
        match self {
            Link::Mqtt(c) => c.abort(),
            Link::Hj212Tcp(l) => l.abort(),
        }
    }
}
