//! Property tests of the wire contract's parsers on hostile input: the JSON payload decoders and
//! topic parsing never panic, and what they accept round-trips. The case counts are set
//! explicitly (at least 100,000 each: CI's fuzz budget).

use dustwatch_protocol::topic::{Topic, TopicRoot};
use dustwatch_protocol::{
    CityLevel, Command, Event, EventTime, Flag, Level, Metric, Reading, Status, MAX_STOP_WORK_S,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const CASES: u32 = 100_000;

/// Field names a hostile payload would use: the contract's, and a few others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "ts",
            "seq",
            "boot",
            "interval_s",
            "pm25",
            "pm10",
            "tsp",
            "noise_dba",
            "temp_c",
            "rh_pct",
            "pressure_kpa",
            "wind_ms",
            "wind_deg",
            "flags",
            "kind",
            "state",
            "fw",
            "level",
            "cmd",
            "duration_s",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{0,8}",
    ]
}

/// Numbers at and beyond every edge: i64/u64/u32 limits, huge and tiny floats, negatives.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-1_000i64..5_000).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(1u64 << 63)),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        prop_oneof![
            prop::sample::select(vec![
                "N",
                "F",
                "online",
                "offline",
                "red",
                "none",
                "reboot",
                "sprinkle",
                "set_interval",
                "sprinkler_on",
                "NaN",
                "inf",
                "-Infinity",
                "1e400",
            ])
            .prop_map(str::to_owned),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 40, 12, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..14)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A reading within the contract's limits (values with two decimals, so JSON text round-trips).
fn reading() -> impl Strategy<Value = Reading> {
    let metric = |m: Metric| {
        let (lo, hi) = m.range();
        let (lo, hi) = ((lo * 100.0).ceil() as i64, (hi * 100.0).floor() as i64);
        prop_oneof![Just(None), (lo..=hi).prop_map(|v| Some(v as f64 / 100.0))]
    };
    (
        946_684_800_000i64..4_102_444_800_000,
        0u64..(1 << 62),
        any::<u32>(),
        1u32..=86_400,
        Metric::ALL.map(metric),
        proptest::collection::vec(
            prop::sample::select(vec![Flag::N, Flag::F, Flag::D, Flag::C]),
            Metric::ALL.len(),
        ),
    )
        .prop_map(|(ts, seq, boot, interval_s, values, flags)| {
            let mut r = Reading {
                ts: EventTime(ts),
                seq,
                boot,
                interval_s,
                ..Reading::default()
            };
            for ((m, v), f) in Metric::ALL.into_iter().zip(values).zip(flags) {
                r.set(m, v);
                if v.is_some() && f != Flag::N {
                    r.flags.insert(m.name().to_owned(), f);
                }
            }
            r
        })
}

/// Every decoder of the contract on one payload: none may panic.
fn decode_all(bytes: &[u8]) {
    let _ = Reading::decode(bytes);
    let _ = Event::decode(bytes);
    let _ = Status::decode(bytes);
    let _ = Command::decode(bytes);
    let _ = CityLevel::decode(bytes);
}

#[derive(Debug, Clone)]
enum JsonInput {
    Value(Value),
    Bytes(Vec<u8>),
    /// A valid reading's text with byte edits (position taken modulo the length).
    Mutated(Box<Reading>, Vec<(usize, u8)>),
}

fn json_input() -> impl Strategy<Value = JsonInput> {
    prop_oneof![
        4 => json().prop_map(JsonInput::Value),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(JsonInput::Bytes),
        3 => (reading(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4))
            .prop_map(|(r, e)| JsonInput::Mutated(Box::new(r), e)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// JSON payloads: any input is decoded or refused with a reason; a valid reading survives
    /// encode -> decode unchanged.
    #[test]
    fn json_decoders_never_panic_and_readings_round_trip(input in json_input()) {
        match input {
            JsonInput::Value(v) => decode_all(v.to_string().as_bytes()),
            JsonInput::Bytes(b) => decode_all(&b),
            JsonInput::Mutated(r, edits) => {
                let mut bytes = r.encode();
                prop_assert_eq!(Reading::decode(&bytes).expect("valid reading decodes"), *r);
                for (i, b) in edits {
                    let n = bytes.len();
                    bytes[i % n] = b;
                }
                decode_all(&bytes);
            }
        }
    }

    /// Topics: any string parses or is refused; whatever parses rebuilds to the same topic, and
    /// every topic built from valid ids parses back to its parts.
    #[test]
    fn topics_never_panic_and_round_trip(
        parts in proptest::collection::vec(
            prop_oneof![
                "[A-Za-z0-9_-]{1,64}",
                prop::sample::select(vec![
                    "dust", "v1", "city", "level", "alerts", "reports", "daily", "reading",
                    "event", "status", "hj212", "cmd", "", "+", "#",
                ]).prop_map(str::to_owned),
                ".{0,70}",
            ],
            0..7,
        ),
        root in prop_oneof![Just("dust/v1".to_owned()), "[a-z/]{0,10}"],
        site in "[A-Za-z0-9_-]{1,64}",
        device in "[A-Za-z0-9_-]{1,64}",
    ) {
        let root = TopicRoot::new(&root);
        let topic = format!("{}/{}", root.as_str(), parts.join("/"));
        for t in [topic.as_str(), parts.join("/").as_str()] {
            if let Ok(parsed) = root.parse(t) {
                prop_assert_eq!(rebuild(&root, parsed), t);
            }
        }
        if !matches!(site.as_str(), "city" | "alerts" | "reports") {
            let kinds: [(String, Topic); 6] = [
                (root.reading(&site, &device), Topic::Reading { site: &site, device: &device }),
                (root.event(&site, &device), Topic::Event { site: &site, device: &device }),
                (root.status(&site, &device), Topic::Status { site: &site, device: &device }),
                (root.hj212(&site, &device), Topic::Hj212 { site: &site, device: &device }),
                (root.cmd(&site, &device), Topic::Cmd { site: &site, device: &device }),
                (root.reply(&site, &device), Topic::Reply { site: &site, device: &device }),
            ];
            for (text, expected) in kinds {
                prop_assert_eq!(root.parse(&text), Ok(expected));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// City levels within the contract round-trip through their JSON.
    #[test]
    fn city_levels_round_trip(
        level in prop::sample::select(vec![Level::None, Level::Blue, Level::Yellow, Level::Orange, Level::Red]),
        ts in 946_684_800_000i64..4_102_444_800_000,
    ) {
        let l = CityLevel { level, ts: EventTime(ts) };
        let bytes = serde_json::to_vec(&l).expect("plain fields");
        prop_assert_eq!(CityLevel::decode(&bytes).expect("valid level"), l);
    }

    /// A stop-work command is accepted exactly when its duration (if any) is 1 s to a week and
    /// its reference (if any) is an id; accepted ones round-trip, refused ones say why.
    #[test]
    fn stop_work_is_accepted_exactly_within_its_limits(
        duration_s in prop::option::of(prop_oneof![0u32..=10, 604_790u32..=604_810, any::<u32>()]),
        reference in prop::option::of("[A-Za-z0-9_ -]{0,70}"),
        resume in any::<bool>(),
    ) {
        let command = if resume {
            Command::ResumeWork { reference: reference.clone() }
        } else {
            Command::StopWork { duration_s, reference: reference.clone() }
        };
        let bytes = serde_json::to_vec(&command).expect("plain fields");
        let duration_ok = resume || duration_s.is_none_or(|d| (1..=MAX_STOP_WORK_S).contains(&d));
        let reference_ok = reference.as_deref().is_none_or(|r| {
            (1..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        match Command::decode(&bytes) {
            Ok(decoded) => {
                prop_assert!(duration_ok && reference_ok);
                prop_assert_eq!(decoded, command);
            }
            Err(rejected) => {
                prop_assert!(!(duration_ok && reference_ok));
                prop_assert!(!rejected.detail.is_empty());
            }
        }
    }
}

/// The topic text of a parsed topic.
fn rebuild(root: &TopicRoot, t: Topic) -> String {
    match t {
        Topic::Reading { site, device } => root.reading(site, device),
        Topic::Event { site, device } => root.event(site, device),
        Topic::Status { site, device } => root.status(site, device),
        Topic::Hj212 { site, device } => root.hj212(site, device),
        Topic::Cmd { site, device } => root.cmd(site, device),
        Topic::Reply { site, device } => root.reply(site, device),
        Topic::CityLevel => root.city_level(),
        Topic::Alert { site, rule } => root.alert(site, rule),
        Topic::DailyReport { date } => root.daily_report(date),
    }
}
