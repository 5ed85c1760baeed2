//! Decoding and validating payloads: every rejection carries a reason (a counter label) and a
//! detail a person can act on.

use crate::payload::{CityLevel, Command, Event, Metric, Reading, Status, MAX_STOP_WORK_S};
use crate::time::{EventTime, SECOND};
use serde::de::DeserializeOwned;
use std::fmt;
use thiserror::Error;

/// Largest payload accepted on any device topic. A reading is ~300 bytes; an HJ 212 frame at most
/// 1,024 bytes of data segment plus framing.
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// Event times outside [2000-01-01, 2100-01-01) are a broken clock, not data.
pub const MIN_TS_MS: i64 = 946_684_800_000;
pub const MAX_TS_MS: i64 = 4_102_444_800_000;

/// Largest `seq` accepted: the store keeps integers as signed 64-bit, so a larger one could never
/// be stored (it used to make the store writer retry its batch forever).
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// Longest averaging interval accepted (one day, for HJ 212 day data).
pub const MAX_INTERVAL_S: u32 = 86_400;

/// Why a message was rejected; `label()` is the counter label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    Oversized,
    MalformedJson,
    WrongType,
    NonFinite,
    OutOfRange,
    BadTimestamp,
    BadTopic,
    UnknownSite,
    /// A device beyond the cap on devices per site.
    UnknownDevice,
    BadFrame,
    /// Event time too far ahead of the wall clock: a broken or hostile clock.
    FutureTimestamp,
    /// The store refused the record for a reason retrying cannot fix.
    StoreRefused,
    /// An HJ 212 frame stored without some of its values: the raw frame, kept to show them.
    PartialFrame,
    /// An HJ 212 frame none of whose values could be stored.
    NoValues,
}

impl RejectReason {
    pub const ALL: [RejectReason; 14] = [
        RejectReason::Oversized,
        RejectReason::MalformedJson,
        RejectReason::WrongType,
        RejectReason::NonFinite,
        RejectReason::OutOfRange,
        RejectReason::BadTimestamp,
        RejectReason::BadTopic,
        RejectReason::UnknownSite,
        RejectReason::UnknownDevice,
        RejectReason::BadFrame,
        RejectReason::FutureTimestamp,
        RejectReason::StoreRefused,
        RejectReason::PartialFrame,
        RejectReason::NoValues,
    ];
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::WrongType => "wrong_type",
            RejectReason::NonFinite => "non_finite",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadTopic => "bad_topic",
            RejectReason::UnknownSite => "unknown_site",
            RejectReason::UnknownDevice => "unknown_device",
            RejectReason::BadFrame => "bad_frame",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::StoreRefused => "store_refused",
            RejectReason::PartialFrame => "partial_frame",
            RejectReason::NoValues => "no_values",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A rejected message: the reason and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}: {detail}")]
pub struct Rejected {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejected {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejected {
            reason,
            detail: detail.into(),
        }
    }
}

fn decode_json<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Rejected> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Rejected::new(
            RejectReason::Oversized,
            format!("{} bytes, limit {MAX_PAYLOAD_BYTES}", payload.len()),
        ));
    }
    serde_json::from_slice(payload).map_err(|e| {
        use serde_json::error::Category;
        let reason = match e.classify() {
            Category::Data => RejectReason::WrongType,
            // Firmware that prints floats with printf emits bare NaN/inf, which is not JSON.
            _ if has_non_finite_token(payload) => RejectReason::NonFinite,
            _ => RejectReason::MalformedJson,
        };
        Rejected::new(reason, e.to_string())
    })
}

fn has_non_finite_token(payload: &[u8]) -> bool {
    let text = String::from_utf8_lossy(payload).to_ascii_lowercase();
    text.contains("nan") || text.contains("inf")
}

fn check_ts(ts: EventTime) -> Result<(), Rejected> {
    if (MIN_TS_MS..MAX_TS_MS).contains(&ts.ms()) {
        Ok(())
    } else {
        Err(Rejected::new(
            RejectReason::BadTimestamp,
            format!(
                "ts {} is not a Unix millisecond time between 2000 and 2100",
                ts.ms()
            ),
        ))
    }
}

fn check_seq(seq: u64) -> Result<(), Rejected> {
    if seq <= MAX_SEQ {
        Ok(())
    } else {
        Err(Rejected::new(
            RejectReason::OutOfRange,
            format!("seq {seq} exceeds {MAX_SEQ} (2^63 - 1)"),
        ))
    }
}

/// Check an event time against the wall clock (read on the same Unix-millisecond scale): more
/// than `max_future_ms` ahead of `wall` is a device clock that is wrong (or a hostile one), never
/// data to act on.
pub fn check_not_future(
    ts: EventTime,
    wall: EventTime,
    max_future_ms: i64,
) -> Result<(), Rejected> {
    let ahead = ts - wall;
    if ahead <= max_future_ms {
        Ok(())
    } else {
        Err(Rejected::new(
            RejectReason::FutureTimestamp,
            format!(
                "ts {} is {} s ahead of the wall clock (limit {} s)",
                ts.ms(),
                ahead / SECOND,
                max_future_ms / SECOND
            ),
        ))
    }
}

impl Reading {
    /// Decode and validate a reading payload.
    pub fn decode(payload: &[u8]) -> Result<Reading, Rejected> {
        let r: Reading = decode_json(payload)?;
        r.validate()?;
        Ok(r)
    }

    /// Check time, interval and every value against the contract's limits.
    pub fn validate(&self) -> Result<(), Rejected> {
        check_ts(self.ts)?;
        check_seq(self.seq)?;
        if self.interval_s == 0 || self.interval_s > MAX_INTERVAL_S {
            return Err(Rejected::new(
                RejectReason::OutOfRange,
                format!(
                    "interval_s {} outside 1..={MAX_INTERVAL_S}",
                    self.interval_s
                ),
            ));
        }
        for m in Metric::ALL {
            if let Some(v) = self.get(m) {
                if !v.is_finite() {
                    return Err(Rejected::new(
                        RejectReason::NonFinite,
                        format!("{m} is {v}"),
                    ));
                }
                let (lo, hi) = m.range();
                if v < lo || v > hi {
                    return Err(Rejected::new(
                        RejectReason::OutOfRange,
                        format!("{m} = {v} outside {lo}..={hi} {}", m.unit()),
                    ));
                }
            }
        }
        if let Some(k) = self.flags.keys().find(|k| k.parse::<Metric>().is_err()) {
            return Err(Rejected::new(
                RejectReason::WrongType,
                format!(
                    "flag for unknown metric `{}`",
                    k.chars().take(40).collect::<String>()
                ),
            ));
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Reading always serializes: plain fields only")
    }
}

impl Event {
    pub fn decode(payload: &[u8]) -> Result<Event, Rejected> {
        let e: Event = decode_json(payload)?;
        check_ts(e.ts)?;
        check_seq(e.seq)?;
        Ok(e)
    }
}

impl Status {
    pub fn decode(payload: &[u8]) -> Result<Status, Rejected> {
        let s: Status = decode_json(payload)?;
        if let Some(ts) = s.ts {
            check_ts(ts)?;
        }
        Ok(s)
    }
}

impl Command {
    pub fn decode(payload: &[u8]) -> Result<Command, Rejected> {
        let c: Command = decode_json(payload)?;
        match c {
            Command::SetInterval { interval_s } if interval_s == 0 || interval_s > 3600 => {
                Err(Rejected::new(
                    RejectReason::OutOfRange,
                    format!("interval_s {interval_s} outside 1..=3600"),
                ))
            }
            // A run of nothing, or longer than a day, is a typo, not an instruction.
            Command::Sprinkle { duration_s } if duration_s == 0 || duration_s > 86_400 => {
                Err(Rejected::new(
                    RejectReason::OutOfRange,
                    format!("duration_s {duration_s} outside 1..=86400"),
                ))
            }
            Command::StopWork {
                duration_s: Some(d),
                ..
            } if d == 0 || d > MAX_STOP_WORK_S => Err(Rejected::new(
                RejectReason::OutOfRange,
                format!("duration_s {d} outside 1..={MAX_STOP_WORK_S}"),
            )),
            Command::StopWork {
                reference: Some(r), ..
            }
            | Command::ResumeWork { reference: Some(r) }
                if !crate::topic::is_valid_id(&r) =>
            {
                Err(Rejected::new(
                    RejectReason::WrongType,
                    format!(
                        "ref `{}` is not 1-64 characters of [A-Za-z0-9_-]",
                        r.chars().take(80).collect::<String>()
                    ),
                ))
            }
            c => Ok(c),
        }
    }
}

impl CityLevel {
    pub fn decode(payload: &[u8]) -> Result<CityLevel, Rejected> {
        let c: CityLevel = decode_json(payload)?;
        check_ts(c.ts)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Flag;
    use crate::time::DAY;

    const SAMPLE: &str = r#"{"ts": 1483516800000, "seq": 42, "boot": 3, "interval_s": 60,
 "pm25": 245.0, "pm10": 312.0, "tsp": 401.0, "noise_dba": 62.5,
 "temp_c": -1.5, "rh_pct": 78.0, "pressure_kpa": 102.35, "wind_ms": 1.2, "wind_deg": 45,
 "flags": {"pm10": "N"}}"#;

    #[test]
    fn decodes_the_contract_sample() {
        let r = Reading::decode(SAMPLE.as_bytes()).expect("sample is valid");
        assert_eq!(r.seq, 42);
        assert_eq!(r.pm10, Some(312.0));
        assert_eq!(r.flag(Metric::Pm10), Flag::N);
        assert_eq!(r.valid(Metric::Pm25), Some(245.0));
        let again = Reading::decode(&r.encode()).expect("round trip");
        assert_eq!(again, r);
    }

    fn reason(payload: &str) -> RejectReason {
        Reading::decode(payload.as_bytes())
            .expect_err("must be rejected")
            .reason
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(reason("{not json"), RejectReason::MalformedJson);
        assert_eq!(
            reason(r#"{"ts":1483516800000,"seq":1,"boot":1,"interval_s":60,"pm25":NaN}"#),
            RejectReason::NonFinite
        );
        assert_eq!(
            reason(r#"{"ts":1483516800000,"seq":"x","boot":1,"interval_s":60}"#),
            RejectReason::WrongType
        );
        assert_eq!(
            reason(r#"{"ts":1483516800000,"seq":1,"boot":1,"interval_s":60,"pm10":-3}"#),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(r#"{"ts":5,"seq":1,"boot":1,"interval_s":60}"#),
            RejectReason::BadTimestamp
        );
        assert_eq!(reason(&" ".repeat(5000)), RejectReason::Oversized);
        assert_eq!(
            reason(r#"{"ts":1483516800000,"seq":18446744073709551615,"boot":1,"interval_s":60}"#),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(r#"{"ts":1483516800000,"seq":1,"boot":1,"interval_s":60,"flags":{"pm10":"Q"}}"#),
            RejectReason::WrongType
        );
    }

    #[test]
    fn seq_must_fit_the_store() {
        let at_limit =
            format!(r#"{{"ts":1483516800000,"seq":{MAX_SEQ},"boot":1,"interval_s":60}}"#);
        assert!(Reading::decode(at_limit.as_bytes()).is_ok());
        let event = br#"{"ts":1483516800000,"seq":9223372036854775808,"boot":1,"kind":"reboot"}"#;
        assert_eq!(
            Event::decode(event).expect_err("2^63 is refused").reason,
            RejectReason::OutOfRange
        );
    }

    #[test]
    fn future_is_bounded_by_the_wall_clock() {
        let wall = EventTime(1_700_000_000_000);
        assert!(check_not_future(wall + 300_000, wall, 300_000).is_ok());
        assert!(check_not_future(wall - 10 * 365 * DAY, wall, 300_000).is_ok());
        let e = check_not_future(EventTime(4_102_444_000_000), wall, 300_000).expect_err("2099");
        assert_eq!(e.reason, RejectReason::FutureTimestamp);
        assert!(check_not_future(EventTime(i64::MAX), EventTime(i64::MIN), 0).is_err());
    }

    #[test]
    fn commands_round_trip() {
        let c = Command::decode(br#"{"cmd":"set_interval","interval_s":30}"#).expect("valid");
        assert_eq!(c, Command::SetInterval { interval_s: 30 });
        assert_eq!(
            Command::decode(br#"{"cmd":"reboot"}"#).expect("valid"),
            Command::Reboot
        );
        assert!(Command::decode(br#"{"cmd":"explode"}"#).is_err());
        assert!(Command::decode(br#"{"cmd":"sprinkle","duration_s":0}"#).is_err());
        assert!(Command::decode(br#"{"cmd":"sprinkle","duration_s":86401}"#).is_err());
    }
}
