//! Commands with an id, and the device's answer on its `reply` topic.
//!
//! The office sends `{"id":"c1f3…","cmd":"sprinkle","duration_s":600}` on `…/cmd`; a device that
//! knows ids answers once on `…/reply` with `{"id":"c1f3…","ok":true,"detail":"…","ts":…}`.
//! A command without `id` (older consoles) is still obeyed and never answered.

use crate::payload::Command;
use crate::time::EventTime;
use crate::validate::{RejectReason, Rejected, MAX_PAYLOAD_BYTES};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest command id accepted; the office's ids are 32 hex digits.
pub const MAX_ID_LEN: usize = 64;
/// Longest `detail` a reply may carry.
pub const MAX_DETAIL_LEN: usize = 512;

/// A command's id: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

impl CommandId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommandId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if crate::topic::is_valid_id(&s) && s.len() <= MAX_ID_LEN {
            Ok(CommandId(s))
        } else {
            Err(format!(
                "command id `{}` is not 1-{MAX_ID_LEN} characters of [A-Za-z0-9_-]",
                s.chars().take(80).collect::<String>()
            ))
        }
    }
}

impl From<CommandId> for String {
    fn from(id: CommandId) -> String {
        id.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Payload of `…/cmd`: the command and, from the office, its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CommandId>,
    #[serde(flatten)]
    pub command: Command,
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises (plain fields)")
    }

    /// Decode and check a `…/cmd` payload (the command's own limits included).
    pub fn decode(payload: &[u8]) -> Result<Envelope, Rejected> {
        let command = Command::decode(payload)?;
        #[derive(Deserialize)]
        struct IdOnly {
            #[serde(default)]
            id: Option<CommandId>,
        }
        let id = serde_json::from_slice::<IdOnly>(payload)
            .map_err(|e| Rejected::new(RejectReason::WrongType, e.to_string()))?
            .id;
        Ok(Envelope { id, command })
    }
}

/// Payload of `…/reply`: a device's one answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandReply {
    pub id: CommandId,
    /// True when the device carried the command out.
    pub ok: bool,
    /// What the device did, or why not.
    #[serde(default)]
    pub detail: String,
    /// The device's time of the answer (Unix ms on the wire), when it knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<EventTime>,
}

impl CommandReply {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply always serialises (plain fields)")
    }

    pub fn decode(payload: &[u8]) -> Result<CommandReply, Rejected> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Rejected::new(
                RejectReason::Oversized,
                format!("{} bytes, limit {MAX_PAYLOAD_BYTES}", payload.len()),
            ));
        }
        let r: CommandReply = serde_json::from_slice(payload).map_err(|e| {
            let reason = if e.classify() == serde_json::error::Category::Data {
                RejectReason::WrongType
            } else {
                RejectReason::MalformedJson
            };
            Rejected::new(reason, e.to_string())
        })?;
        if r.detail.len() > MAX_DETAIL_LEN {
            return Err(Rejected::new(
                RejectReason::OutOfRange,
                format!("detail of {} bytes, limit {MAX_DETAIL_LEN}", r.detail.len()),
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_the_id_beside_the_command() {
        let e = Envelope {
            id: Some(CommandId::try_from("c1".to_string()).expect("valid id")),
            command: Command::Sprinkle { duration_s: 600 },
        };
        let bytes = e.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"id":"c1","cmd":"sprinkle","duration_s":600}"#
        );
        assert_eq!(Envelope::decode(&bytes), Ok(e));
        // Without an id: still a command.
        let bare = Envelope::decode(br#"{"cmd":"reboot"}"#).expect("bare command");
        assert_eq!(bare.id, None);
    }

    #[test]
    fn stop_work_and_resume_travel_with_their_reference() {
        let stop = Envelope {
            id: Some(CommandId::try_from("c2".to_string()).expect("valid id")),
            command: Command::StopWork {
                duration_s: None,
                reference: Some("order-12".into()),
            },
        };
        let bytes = stop.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"id":"c2","cmd":"stop_work","ref":"order-12"}"#
        );
        assert_eq!(Envelope::decode(&bytes), Ok(stop));
        let timed = Envelope::decode(br#"{"id":"c3","cmd":"stop_work","duration_s":3600}"#)
            .expect("a timed stop");
        assert_eq!(
            timed.command,
            Command::StopWork {
                duration_s: Some(3600),
                reference: None
            }
        );
        assert_eq!(
            Envelope::decode(br#"{"cmd":"resume_work","ref":"notice-3"}"#)
                .expect("resume")
                .command,
            Command::ResumeWork {
                reference: Some("notice-3".into())
            }
        );
        let reason = |p: &[u8]| Envelope::decode(p).map_err(|r| r.reason).err();
        assert_eq!(
            reason(br#"{"cmd":"stop_work","duration_s":0}"#),
            Some(RejectReason::OutOfRange)
        );
        assert_eq!(
            reason(br#"{"cmd":"stop_work","duration_s":604801}"#),
            Some(RejectReason::OutOfRange)
        );
        assert_eq!(
            reason(br#"{"cmd":"stop_work","ref":"order 12"}"#),
            Some(RejectReason::WrongType)
        );
        assert_eq!(
            reason(br#"{"cmd":"resume_work","ref":""}"#),
            Some(RejectReason::WrongType)
        );
        assert_eq!(
            reason(br#"{"cmd":"stop_work","duration_s":"1h"}"#),
            Some(RejectReason::WrongType)
        );
    }

    #[test]
    fn bad_replies_are_rejected_with_reasons() {
        let ok =
            CommandReply::decode(br#"{"id":"c1","ok":false,"detail":"busy"}"#).expect("good reply");
        assert!(!ok.ok);
        let reason = |p: &[u8]| CommandReply::decode(p).map_err(|r| r.reason).err();
        assert_eq!(reason(b"{oops"), Some(RejectReason::MalformedJson));
        assert_eq!(
            reason(br#"{"id":"a b","ok":true}"#),
            Some(RejectReason::WrongType)
        );
        assert_eq!(reason(br#"{"ok":true}"#), Some(RejectReason::WrongType));
        let long = format!(r#"{{"id":"c1","ok":true,"detail":"{}"}}"#, "x".repeat(600));
        assert_eq!(reason(long.as_bytes()), Some(RejectReason::OutOfRange));
    }
}
