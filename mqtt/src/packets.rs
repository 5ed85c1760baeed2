//! The MQTT 3.1.1 packets dustwatch's clients write, in one place: built by rumqttc's
//! `mqttbytes` codec, except the QoS 1 PUBLISH (see [`publish_qos1`]). No packet is spelled as
//! raw bytes anywhere else.

use crate::credentials::Login;
use bytes::{BufMut, BytesMut};
use rumqttc::mqttbytes::{self, v4};
use rumqttc::QoS;
use std::time::Duration;

/// A device's last will: published (QoS 1, retained) by the broker when the device vanishes.
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// CONNECT with a persistent session (clean session off): the broker keeps what it queued for
/// the client while it is away (commands for a device, readings for the aggregator).
pub fn connect(
    client_id: &str,
    keep_alive: Duration,
    login: Option<&Login>,
    will: Option<Will>,
) -> v4::Connect {
    let mut connect = v4::Connect::new(client_id);
    connect.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
    connect.clean_session = false;
    if let Some(login) = login {
        connect.set_login(login.username.clone(), login.password.clone());
    }
    if let Some(w) = will {
        connect.last_will = Some(v4::LastWill::new(
            w.topic,
            w.payload,
            QoS::AtLeastOnce,
            true,
        ));
    }
    connect
}

/// SUBSCRIBE to `filter` at QoS 1.
pub fn subscribe(buf: &mut BytesMut, filter: &str, pkid: u16) -> Result<usize, mqttbytes::Error> {
    let mut sub = v4::Subscribe::new(filter, QoS::AtLeastOnce);
    sub.pkid = pkid;
    sub.write(buf)
}

/// PUBACK of a QoS 1 message.
pub fn puback(buf: &mut BytesMut, pkid: u16) {
    // Writing a PUBACK cannot fail: a fixed four bytes.
    let _ = v4::PubAck::new(pkid).write(buf);
}

/// PINGREQ.
pub fn pingreq(buf: &mut BytesMut) {
    let _ = v4::PingReq.write(buf);
}

/// DISCONNECT: a clean close (the broker keeps the session and sends no will).
pub fn disconnect(buf: &mut BytesMut) {
    let _ = v4::Disconnect.write(buf);
}

/// A QoS 1 PUBLISH, written by hand: the codec's `Publish` wants an owned topic `String` and
/// payload `Bytes` per message, a copy of each that a fleet of devices pays on every reading.
/// Checked against the codec in the tests below.
pub fn publish_qos1(buf: &mut BytesMut, topic: &str, retain: bool, pkid: u16, payload: &[u8]) {
    let remaining = 2 + topic.len() + 2 + payload.len();
    buf.reserve(5 + remaining);
    // Type 3 (PUBLISH), QoS 1 in bits 1-2, RETAIN in bit 0.
    buf.put_u8(0x30 | (1 << 1) | u8::from(retain));
    put_remaining_length(buf, remaining);
    // Topics are at most ~150 bytes (root + two 64-byte ids).
    buf.put_u16(topic.len() as u16);
    buf.put_slice(topic.as_bytes());
    buf.put_u16(pkid);
    buf.put_slice(payload);
}

/// MQTT's variable-length "remaining length".
fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

/// Length of a fixed header and the remaining length it announces, once all of it is in `buf`.
/// (mqttbytes keeps its parsed header private and reports only the remaining length of a packet
/// over the limit, not where the topic starts.)
pub fn fixed_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut remaining = 0usize;
    for (i, byte) in buf.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((i + 2, remaining));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_encoding_matches_the_codec() {
        for size in [0, 1, 100, 300, 20_000] {
            let payload = vec![b'x'; size];
            let topic = "dust/v1/s/d/reading";
            let mut buf = BytesMut::new();
            publish_qos1(&mut buf, topic, true, 7, &payload);
            match v4::read(&mut buf, 1 << 20) {
                Ok(v4::Packet::Publish(p)) => {
                    assert_eq!(p.topic, topic);
                    assert_eq!(p.pkid, 7);
                    assert!(p.retain);
                    assert_eq!(p.qos, QoS::AtLeastOnce);
                    assert_eq!(p.payload.len(), size);
                }
                other => panic!("not a publish: {other:?}"),
            }
            assert!(buf.is_empty());
        }
    }

    /// Each packet written here reads back whole, as what it was written as.
    fn read_back(write: impl FnOnce(&mut BytesMut)) -> v4::Packet {
        let mut buf = BytesMut::new();
        write(&mut buf);
        let packet = v4::read(&mut buf, 1 << 20).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        packet
    }

    #[test]
    fn the_small_packets_read_back() {
        let ack = read_back(|b| puback(b, 513));
        assert!(matches!(ack, v4::Packet::PubAck(a) if a.pkid == 513));
        assert!(matches!(read_back(pingreq), v4::Packet::PingReq));
        assert!(matches!(read_back(disconnect), v4::Packet::Disconnect));
        let sub = read_back(|b| {
            subscribe(b, "dust/v1/+/+/reading", 1).expect("subscribe");
        });
        assert!(matches!(sub, v4::Packet::Subscribe(s) if s.pkid == 1));
        let login = Login {
            username: "u".into(),
            password: "p".into(),
        };
        let will = Will {
            topic: "dust/v1/s/d/status".into(),
            payload: b"offline".to_vec(),
        };
        let connect = read_back(|b| {
            connect("dev-1", Duration::from_secs(30), Some(&login), Some(will))
                .write(b)
                .expect("connect");
        });
        match connect {
            v4::Packet::Connect(c) => {
                assert_eq!(c.client_id, "dev-1");
                assert_eq!(c.keep_alive, 30);
                assert!(!c.clean_session);
                assert_eq!(c.login.map(|l| l.username).as_deref(), Some("u"));
                assert!(c.last_will.is_some_and(|w| w.retain));
            }
            other => panic!("not a connect: {other:?}"),
        }
    }

    #[test]
    fn fixed_header_lengths() {
        assert_eq!(fixed_header(&[0x30, 0x00]), Some((2, 0)));
        assert_eq!(fixed_header(&[0x32, 0x7F]), Some((2, 127)));
        assert_eq!(fixed_header(&[0x32, 0x80, 0x01]), Some((3, 128)));
        // 268,435,455: the largest an MQTT packet can announce.
        assert_eq!(
            fixed_header(&[0x32, 0xFF, 0xFF, 0xFF, 0x7F]),
            Some((5, 268_435_455))
        );
        // Incomplete: the continuation bit says another length byte follows.
        assert_eq!(fixed_header(&[0x32, 0x80]), None);
        assert_eq!(fixed_header(&[0x32]), None);
    }
}
