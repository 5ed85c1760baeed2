//! The payloads' JSON is the contract: event times travel as bare Unix milliseconds, exactly as
//! they did when the fields were plain integers. Each payload is pinned byte for byte, and any
//! time in the contract's range encodes as the same number it decodes from.

use dustwatch_protocol::{
    CityLevel, CommandId, CommandReply, Event, EventKind, EventTime, Level, Reading, Status,
    StatusState,
};
use proptest::prelude::*;

const TS: i64 = 1_483_516_800_123;

#[test]
fn reading_json_is_unchanged() {
    let r = Reading {
        ts: EventTime(TS),
        seq: 42,
        boot: 3,
        interval_s: 60,
        pm10: Some(88.5),
        ..Reading::default()
    };
    let text = r#"{"ts":1483516800123,"seq":42,"boot":3,"interval_s":60,"pm10":88.5}"#;
    assert_eq!(String::from_utf8_lossy(&r.encode()), text);
    assert_eq!(Reading::decode(text.as_bytes()).expect("valid reading"), r);
}

#[test]
fn event_json_is_unchanged() {
    let e = Event {
        ts: EventTime(TS),
        seq: 7,
        boot: 1,
        kind: EventKind::SprinklerOn,
    };
    let text = r#"{"ts":1483516800123,"seq":7,"boot":1,"kind":"sprinkler_on"}"#;
    assert_eq!(serde_json::to_string(&e).expect("plain fields"), text);
    assert_eq!(Event::decode(text.as_bytes()).expect("valid event"), e);
}

#[test]
fn status_json_is_unchanged() {
    let s = Status {
        state: StatusState::Online,
        fw: Some("1.2.0".into()),
        boot: Some(3),
        interval_s: Some(60),
        ts: Some(EventTime(TS)),
    };
    let text = r#"{"state":"online","fw":"1.2.0","boot":3,"interval_s":60,"ts":1483516800123}"#;
    assert_eq!(serde_json::to_string(&s).expect("plain fields"), text);
    assert_eq!(Status::decode(text.as_bytes()).expect("valid status"), s);
    // The last will carries no time at all.
    let will = Status::decode(br#"{"state":"offline"}"#).expect("valid will");
    assert_eq!(will.ts, None);
}

#[test]
fn city_level_json_is_unchanged() {
    let l = CityLevel {
        level: Level::Orange,
        ts: EventTime(TS),
    };
    let text = r#"{"level":"orange","ts":1483516800123}"#;
    assert_eq!(serde_json::to_string(&l).expect("plain fields"), text);
    assert_eq!(CityLevel::decode(text.as_bytes()).expect("valid level"), l);
}

#[test]
fn command_reply_json_is_unchanged() {
    let r = CommandReply {
        id: CommandId::try_from("c1".to_string()).expect("valid id"),
        ok: true,
        detail: "done".into(),
        ts: Some(EventTime(TS)),
    };
    let text = r#"{"id":"c1","ok":true,"detail":"done","ts":1483516800123}"#;
    assert_eq!(String::from_utf8_lossy(&r.encode()), text);
    assert_eq!(
        CommandReply::decode(text.as_bytes()).expect("valid reply"),
        r
    );
}

proptest! {
    /// Any event time of the contract's range is written as the very integer it was read from.
    #[test]
    fn event_times_travel_as_bare_milliseconds(ts in 946_684_800_000i64..4_102_444_800_000) {
        let text = format!(r#"{{"ts":{ts},"seq":1,"boot":1,"interval_s":60}}"#);
        let r = Reading::decode(text.as_bytes()).expect("in range");
        prop_assert_eq!(r.ts, EventTime(ts));
        let encoded = r.encode();
        prop_assert_eq!(String::from_utf8_lossy(&encoded), text);
    }
}
