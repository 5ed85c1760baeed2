//! A device's side of commands: read the office's command (with its id) and say what became of
//! it on the `reply` topic, once, as firmware that knows ids does. A command without an id is
//! obeyed and not answered.

use dustwatch_protocol::{Command, CommandReply, Envelope, EventTime, Rejected};

/// The office's command as received.
pub(crate) fn decode(payload: &[u8]) -> Result<Envelope, Rejected> {
    Envelope::decode(payload)
}

/// The answer to a command carried out at device time `now_ms`; `None` when the command had no
/// id (nobody waits for an answer then).
pub(crate) fn answer(envelope: &Envelope, now_ms: i64) -> Option<Vec<u8>> {
    let id = envelope.id.clone()?;
    let detail = match envelope.command {
        Command::Sprinkle { duration_s } => format!("sprinkling for {duration_s} s"),
        Command::SetInterval { interval_s } => format!("reporting every {interval_s} s"),
        Command::Reboot => "rebooting".to_string(),
        Command::StopWork {
            duration_s,
            ref reference,
        } => {
            let why = reference
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            match duration_s {
                Some(d) => format!("work stopped for {d} s{why}"),
                None => format!("work stopped until resumed{why}"),
            }
        }
        Command::ResumeWork { .. } => "work resumed".to_string(),
    };
    Some(
        CommandReply {
            id,
            ok: true,
            detail,
            ts: Some(EventTime(now_ms)),
        }
        .encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_an_id_are_answered_once_and_bare_ones_not() {
        let env = decode(br#"{"id":"abc","cmd":"sprinkle","duration_s":60}"#).expect("command");
        let reply = answer(&env, 1_000).expect("answered");
        let r = CommandReply::decode(&reply).expect("a valid reply");
        assert_eq!(r.id.as_str(), "abc");
        assert!(r.ok);
        let bare = decode(br#"{"cmd":"reboot"}"#).expect("command");
        assert_eq!(answer(&bare, 1_000), None);
    }

    #[test]
    fn a_stop_work_answer_names_the_order() {
        let env = decode(br#"{"id":"s1","cmd":"stop_work","ref":"order-7"}"#).expect("command");
        let r = CommandReply::decode(&answer(&env, 5).expect("answered")).expect("valid reply");
        assert!(r.ok);
        assert_eq!(r.detail, "work stopped until resumed (order-7)");
        assert_eq!(r.ts, Some(EventTime(5)));
    }
}
