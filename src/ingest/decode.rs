//! From an MQTT message to a store record: topic and payload are checked against the contract;
//! anything wrong becomes a dead letter with its reason, so nothing is dropped silently.

use super::hj212::MqttFrames;
use crate::store::{DeadLetter, Record};
use dustwatch_protocol::{
    CityLevel, CommandReply, Event, Reading, RejectReason, Rejected, Status, Topic, TopicRoot,
};

/// Decode one message. `None` means the message is not ingest's business (a command, our own
/// alerts, an empty retained clear, a packet of a split HJ 212 frame still incomplete) and only
/// needs its acknowledgement.
pub fn decode(
    root: &TopicRoot,
    hj212: &mut MqttFrames,
    topic: &str,
    payload: &[u8],
) -> Option<Record> {
    let parsed = match root.parse(topic) {
        Ok(t) => t,
        Err(e) => {
            return Some(dead(
                topic,
                payload,
                Rejected::new(RejectReason::BadTopic, e.to_string()),
            ))
        }
    };
    let result = match parsed {
        Topic::Reading { site, device } => {
            Reading::decode(payload).map(|reading| Record::Reading {
                site: site.to_string(),
                device: device.to_string(),
                reading,
            })
        }
        Topic::Event { site, device } => Event::decode(payload).map(|event| Record::Event {
            site: site.to_string(),
            device: device.to_string(),
            event,
        }),
        Topic::Status { .. } | Topic::CityLevel if payload.is_empty() => return None,
        Topic::Status { site, device } => Status::decode(payload).map(|status| Record::Status {
            site: site.to_string(),
            device: device.to_string(),
            status,
        }),
        Topic::CityLevel => CityLevel::decode(payload).map(|level| Record::CityLevel {
            level,
            source: "mqtt".to_string(),
        }),
        Topic::Hj212 { site, device } => return hj212.decode(topic, site, device, payload),
        Topic::Reply { site, device } => {
            CommandReply::decode(payload).map(|reply| Record::CommandReply {
                site: site.to_string(),
                device: device.to_string(),
                reply,
            })
        }
        Topic::Cmd { .. } | Topic::Alert { .. } | Topic::DailyReport { .. } => return None,
    };
    Some(result.unwrap_or_else(|rejected| dead(topic, payload, rejected)))
}

/// The dead letter of a message too big to read whole: its topic, the start of its payload, and
/// its size in the reason.
pub fn oversized(topic: &str, prefix: Vec<u8>, size: usize) -> Record {
    dead(
        topic,
        &prefix,
        Rejected::new(
            RejectReason::Oversized,
            format!(
                "{size} bytes, limit {}",
                dustwatch_protocol::MAX_PAYLOAD_BYTES
            ),
        ),
    )
}

fn dead(topic: &str, payload: &[u8], rejected: Rejected) -> Record {
    Record::DeadLetter(DeadLetter {
        topic: topic.chars().take(256).collect(),
        // Oversized payloads are kept truncated: the reason says how big they were.
        payload: payload[..payload.len().min(dustwatch_protocol::MAX_PAYLOAD_BYTES)].to_vec(),
        reason: rejected.reason,
        detail: rejected.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> MqttFrames {
        MqttFrames::new(Default::default(), Default::default())
    }

    fn reason(topic: &str, payload: &[u8]) -> Option<RejectReason> {
        match decode(&TopicRoot::default(), &mut frames(), topic, payload) {
            Some(Record::DeadLetter(d)) => Some(d.reason),
            _ => None,
        }
    }

    #[test]
    fn good_reading_becomes_a_record() {
        let r = decode(
            &TopicRoot::default(),
            &mut frames(),
            "dust/v1/s1/d1/reading",
            br#"{"ts":1483516800000,"seq":1,"boot":1,"interval_s":60,"pm10":80}"#,
        );
        assert!(matches!(r, Some(Record::Reading { ref site, .. }) if site == "s1"));
    }

    #[test]
    fn bad_messages_become_dead_letters_with_reasons() {
        assert_eq!(
            reason("dust/v1/bad id/d1/reading", b"{}"),
            Some(RejectReason::BadTopic)
        );
        assert_eq!(
            reason("dust/v1/s1/d1/reading", b"{oops"),
            Some(RejectReason::MalformedJson)
        );
        assert_eq!(
            reason(
                "dust/v1/s1/d1/event",
                br#"{"ts":1483516800000,"seq":1,"boot":1,"kind":"dance"}"#
            ),
            Some(RejectReason::WrongType)
        );
        let big = vec![b' '; 10_000];
        match decode(
            &TopicRoot::default(),
            &mut frames(),
            "dust/v1/s1/d1/reading",
            &big,
        ) {
            Some(Record::DeadLetter(d)) => {
                assert_eq!(d.reason, RejectReason::Oversized);
                assert!(d.payload.len() <= dustwatch_protocol::MAX_PAYLOAD_BYTES);
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[test]
    fn replies_become_records_and_bad_ones_dead_letters() {
        let r = decode(
            &TopicRoot::default(),
            &mut frames(),
            "dust/v1/s1/d1/reply",
            br#"{"id":"c1","ok":true,"detail":"done"}"#,
        );
        assert!(matches!(r, Some(Record::CommandReply { ref device, .. }) if device == "d1"));
        assert_eq!(
            reason("dust/v1/s1/d1/reply", br#"{"ok":true}"#),
            Some(RejectReason::WrongType)
        );
        assert_eq!(
            reason("dust/v1/s1/d1/reply", b"not json"),
            Some(RejectReason::MalformedJson)
        );
    }

    #[test]
    fn empty_retained_clear_is_ignored() {
        assert!(decode(
            &TopicRoot::default(),
            &mut frames(),
            "dust/v1/s1/d1/status",
            b""
        )
        .is_none());
        assert!(decode(
            &TopicRoot::default(),
            &mut frames(),
            "dust/v1/s1/d1/cmd",
            b"{}"
        )
        .is_none());
    }
}
