//! Whole-codec tests: the vector of docs/domain.md, round trips, every rejection reason, and property
//! tests that the decoder never panics.

use super::*;
use crate::payload::{Flag, Metric, Reading};
use crate::time::{EventTime, SECOND};
use proptest::prelude::*;
use std::collections::BTreeSet;

const DOMAIN_SEGMENT: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N;a34002-Rtd=312.0,a34002-Flag=N;a34001-Rtd=401.0,a34001-Flag=N;LA-Rtd=62.5,LA-Flag=N;a01001-Rtd=-1.5,a01001-Flag=N;a01002-Rtd=78.0,a01002-Flag=N;a01006-Rtd=102.35,a01006-Flag=N;a01007-Rtd=1.2,a01007-Flag=N;a01008-Rtd=45,a01008-Flag=N&&";

fn domain_frame() -> Vec<u8> {
    format!("##0374{DOMAIN_SEGMENT}06C0\r\n").into_bytes()
}

#[test]
fn domain_vector_decodes_to_its_values_and_reencodes_byte_identical() {
    let bytes = domain_frame();
    let f = decode(&bytes).unwrap();
    assert_eq!(f.qn, "20170102150000000");
    assert_eq!(f.st, 39);
    assert_eq!(f.cn, Cn::RealTime);
    assert_eq!(f.pw, "123456");
    assert_eq!(f.mn, "410108HJ0000000000000001");
    assert_eq!(f.flag, Some(4));
    assert_eq!(f.packet, None);
    assert_eq!(f.cp.data_time.unwrap().to_string(), "20170102150000");
    let expected = [
        (Factor::Pm25, 245.0),
        (Factor::Pm10, 312.0),
        (Factor::Tsp, 401.0),
        (Factor::Noise, 62.5),
        (Factor::Temp, -1.5),
        (Factor::Rh, 78.0),
        (Factor::Pressure, 102.35),
        (Factor::WindSpeed, 1.2),
        (Factor::WindDir, 45.0),
    ];
    assert_eq!(f.cp.factors.len(), expected.len());
    for (data, (factor, value)) in f.cp.factors.iter().zip(expected) {
        assert_eq!(data.factor, factor);
        assert_eq!(data.rtd.as_ref().map(Num::value), Some(value));
        assert_eq!(data.flag, Some(Flag::N));
    }
    assert_eq!(encode(&f).unwrap(), bytes);

    let r = read_values(&f, &DeviceProfile::default(), 1, 1)
        .unwrap()
        .reading;
    assert_eq!(
        r.ts,
        EventTime(1_483_340_400_000),
        "15:00 at +08:00 is 07:00 UTC"
    );
    assert_eq!(r.interval_s, 60);
    let values: Vec<f64> = Metric::ALL.iter().filter_map(|&m| r.get(m)).collect();
    assert_eq!(
        values,
        [245.0, 312.0, 401.0, 62.5, -1.5, 78.0, 102.35, 1.2, 45.0]
    );
    assert!(r.flags.is_empty());
    assert!(r.validate().is_ok());
}

fn label_of(result: Result<impl std::fmt::Debug, Hj212Error>) -> &'static str {
    result.unwrap_err().label()
}

#[test]
fn every_rejection_reason_has_a_label_and_a_message() {
    let seg = |from: &str, to: &str| wrap_segment(&DOMAIN_SEGMENT.replacen(from, to, 1)).unwrap();
    let good = domain_frame();
    let n = good.len();
    let mut bad_crc = good.clone();
    bad_crc[n - 3] = b'1';
    let mut longer = good.clone();
    longer[2..6].copy_from_slice(b"0375");
    let d = DeviceProfile::default();
    let reply = decode(&seg("CN=2011", "CN=9014")).unwrap();
    let split = decode(&seg("Flag=4", "Flag=6;PNUM=2;PNO=1")).unwrap();
    let mut other = split.clone();
    other.packet = Some(Packet { total: 3, index: 2 });
    let mut r = Reassembler::new(2);
    r.push(split.clone()).unwrap();
    let nan = Reading {
        ts: EventTime(1_483_340_400_000),
        interval_s: 60,
        pm25: Some(f64::NAN),
        ..Reading::default()
    };

    let cases: Vec<Hj212Error> = vec![
        decode(b"GET / HTTP/1.1\r\n").unwrap_err(),
        decode(b"##03x4QN=").unwrap_err(),
        decode(&longer).unwrap_err(),
        decode(&good[..100]).unwrap_err(),
        decode(b"##1025").unwrap_err(),
        decode(&bad_crc).unwrap_err(),
        decode(&[&good[..n - 1], b"x"].concat()).unwrap_err(),
        decode(&[good.as_slice(), b"\r\n"].concat()).unwrap_err(),
        decode(&seg("PW=123456", "PW=12\t456")).unwrap_err(),
        decode(&seg("CP=&&", "CP=&")).unwrap_err(),
        decode(&seg("QN=20170102150000000;", "")).unwrap_err(),
        decode(&seg("ST=39", "ST=39;ST=39")).unwrap_err(),
        decode(&seg("CN=2011", "CN=2011;XX=1")).unwrap_err(),
        decode(&seg("ST=39", "ST=three")).unwrap_err(),
        decode(&seg("CN=2011", "CN=2099")).unwrap_err(),
        from_reading(&nan, Cn::RealTime, "M", "p", 39, &d).unwrap_err(),
        decode(&seg("DataTime=20170102150000", "DataTime=20170132150000")).unwrap_err(),
        read_values(&reply, &d, 0, 0).unwrap_err(),
        read_values(&split, &d, 0, 0).unwrap_err(),
        r.push(other).unwrap_err(),
    ];
    let labels: BTreeSet<&str> = cases.iter().map(Hj212Error::label).collect();
    assert_eq!(labels.len(), cases.len(), "one case per reason: {labels:?}");
    for e in &cases {
        let msg = e.to_string();
        assert!(msg.len() > 20, "{}: {msg}", e.label());
    }
    assert_eq!(label_of(decode(&seg("ST=39", "ST=three"))), "bad_field");
}

fn metric_value(metric: Metric) -> impl Strategy<Value = Option<f64>> {
    let (lo, hi) = metric.range();
    // Zeros often: flagged, they are what per-value judging leaves out.
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(lo.max(0.0))),
        4 => (lo..=hi).prop_map(Some),
    ]
}

/// What per-value judging keeps of a reading sent as a frame: a 0 flagged other than N is no
/// measurement, so it is left out (with its flag); the number left out.
fn judged(r: &Reading) -> (Reading, usize) {
    let mut kept = r.clone();
    let mut zeros = 0;
    for m in Metric::ALL {
        if kept.get(m) == Some(0.0) && !kept.flag(m).is_valid() {
            kept.set(m, None);
            kept.flags.remove(m.name());
            zeros += 1;
        }
    }
    (kept, zeros)
}

/// The reading the ingest path makes of a frame, and the values it left out.
fn read_back(f: &Frame, d: &DeviceProfile, r: &Reading) -> Values {
    read_values(f, d, r.seq, r.boot).expect("a data frame of a valid reading")
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        4 => Just(Flag::N),
        1 => prop::sample::select(vec![Flag::F, Flag::M, Flag::S, Flag::D, Flag::C, Flag::T, Flag::B]),
    ]
}

prop_compose! {
    fn reading()(
        secs in 946_684_800i64..4_102_444_800,
        values in Metric::ALL.map(metric_value),
        flags in proptest::collection::vec(flag(), Metric::ALL.len()),
    ) -> Reading {
        let mut r = Reading { ts: EventTime(secs * SECOND), ..Reading::default() };
        for ((m, v), f) in Metric::ALL.into_iter().zip(values).zip(flags) {
            r.set(m, v);
            if v.is_some() && f != Flag::N {
                r.flags.insert(m.name().to_owned(), f);
            }
        }
        r
    }
}

fn cn() -> impl Strategy<Value = Cn> {
    prop::sample::select(vec![Cn::RealTime, Cn::Minute, Cn::Hour, Cn::Day])
}

fn unit() -> impl Strategy<Value = PmUnit> {
    prop::sample::select(vec![PmUnit::UgPerM3, PmUnit::MgPerM3])
}

/// A byte edit: flip, replace, insert or delete at a position (taken modulo the length).
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b";,=&-#.0123456789NDaCPQ\r\n".to_vec())
    ];
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x ^= b;
                }
            }
            Edit::Set(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = b;
                }
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % len);
                }
            }
        }
    }
}

/// Whatever decodes must survive everything downstream without panicking, and re-encode to an
/// equal frame when it fits.
fn exercise(bytes: &[u8]) {
    let Ok(frame) = decode(bytes) else { return };
    for unit in [PmUnit::UgPerM3, PmUnit::MgPerM3] {
        let device = DeviceProfile {
            unit,
            ..DeviceProfile::default()
        };
        // Judged value by value: whatever is kept is plausible, every drop has a bounded label.
        if let Ok(v) = read_values(&frame, &device, 0, 0) {
            for m in Metric::ALL {
                if let Some(x) = v.reading.get(m) {
                    let (lo, hi) = m.range();
                    assert!(x.is_finite() && (lo..=hi).contains(&x), "{m} = {x} kept");
                }
            }
            assert!(v.dropped.iter().all(|d| FACTOR_LABELS.contains(&d.factor)));
        }
    }
    let _ = data_reply(&frame).encode();
    let _ = Reassembler::new(1).push(frame.clone());
    if let Ok(again) = encode(&frame) {
        let mut expected = frame.clone();
        expected.cp.mapped_keys.clear();
        assert_eq!(decode(&again).unwrap(), expected);
    }
    let _ = encode_packets(&frame);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn readings_round_trip_through_frames(r in reading(), cn in cn(), unit in unit(), rt in 1u32..3_600) {
        let device = DeviceProfile { unit, realtime_interval_s: rt, ..DeviceProfile::default() };
        let mut r = r;
        r.interval_s = cn.interval_s(rt).unwrap_or_default();
        let frame = from_reading(&r, cn, "410108HJ0000000000000001", "123456", 39, &device).unwrap();
        let bytes = encode(&frame).unwrap();
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &frame);
        let back = read_back(&decoded, &device, &r);
        let (kept, zeros) = judged(&r);
        prop_assert_eq!(back.reading, kept);
        prop_assert_eq!(back.dropped.len(), zeros);
        prop_assert!(back.dropped.iter().all(|d| d.reason == DropReason::ZeroFlagged));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1_200)) {
        exercise(&bytes);
    }

    #[test]
    fn decode_never_panics_on_frame_like_bytes(
        len in "[0-9]{4}",
        body in "[A-Za-z0-9=;,&.\\-]{0,300}",
        tail in "[0-9A-Fa-f]{4}\r\n",
    ) {
        exercise(format!("##{len}{body}{tail}").as_bytes());
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(edits in proptest::collection::vec(edit(), 1..8)) {
        // Mutate the whole frame (framing checks), and the segment alone re-wrapped with a
        // correct length and CRC (so the mutation reaches the segment parser).
        let mut whole = domain_frame();
        apply(&mut whole, &edits);
        exercise(&whole);
        let mut seg = DOMAIN_SEGMENT.as_bytes().to_vec();
        apply(&mut seg, &edits);
        if seg.len() <= MAX_SEGMENT_LEN {
            let mut framed = format!("##{:04}", seg.len()).into_bytes();
            framed.extend_from_slice(&seg);
            framed.extend_from_slice(format!("{:04X}\r\n", crc16(&seg)).as_bytes());
            exercise(&framed);
        }
    }
}

/// One fuzz input for the decoder: raw bytes, or a (mutated) real frame, or a reading to round
/// trip.
#[derive(Debug, Clone)]
enum FuzzInput {
    Bytes(Vec<u8>),
    /// Frame-like text with a correct length and CRC, so it reaches the segment parser.
    Wrapped(Vec<u8>),
    Mutated(Vec<Edit>),
    /// A field-shaped frame (gases, an unknown factor, Min/Avg/Max, zeros, extra `&&`, lowercase
    /// CRC, NUL padding), mutated: the paths that keep unread items and drop single values.
    Field(Vec<Edit>),
    RoundTrip(Box<Reading>, Cn, PmUnit),
}

pub(super) const FIELD_SEGMENT: &str = "QN=20170102150100000;ST=22;CN=2051;PW=123456;MN=AIR01;CP=&&&&DataTime=20170102150000;a34004-Min=20,a34004-Avg=25,a34004-Max=31,a34004-Flag=N;a21004-Avg=35,a21004-Flag=N;zz9-Avg=1;a01006-Avg=0.0,a01006-Flag=N;a34002-Avg=0,a34002-Flag=D;a01001-Avg=-1e2;TSP-Avg=90&&&&";

/// The field segment framed with a lowercase CRC and a trailing NUL.
pub(super) fn field_frame(seg: &[u8]) -> Vec<u8> {
    let mut framed = format!("##{:04}", seg.len()).into_bytes();
    framed.extend_from_slice(seg);
    framed.extend_from_slice(format!("{:04x}\r\n\0", crc16(seg)).as_bytes());
    framed
}

fn fuzz_input() -> impl Strategy<Value = FuzzInput> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1_100).prop_map(FuzzInput::Bytes),
        "[A-Za-z0-9=;,&.\\-]{0,400}".prop_map(|s| FuzzInput::Wrapped(s.into_bytes())),
        proptest::collection::vec(edit(), 1..8).prop_map(FuzzInput::Mutated),
        proptest::collection::vec(edit(), 0..8).prop_map(FuzzInput::Field),
        (reading(), cn(), unit()).prop_map(|(r, c, u)| FuzzInput::RoundTrip(Box::new(r), c, u)),
    ]
}

fn wrapped(seg: &[u8]) -> Vec<u8> {
    let mut framed = format!("##{:04}", seg.len()).into_bytes();
    framed.extend_from_slice(seg);
    framed.extend_from_slice(format!("{:04X}\r\n", crc16(seg)).as_bytes());
    framed
}

proptest! {
    // The CI fuzz budget: at least 100,000 cases, set explicitly.
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    /// No input panics the decoder or anything downstream of it; readings round-trip.
    #[test]
    fn decoder_fuzz(input in fuzz_input()) {
        match input {
            FuzzInput::Bytes(b) => exercise(&b),
            FuzzInput::Wrapped(seg) => {
                if seg.len() <= MAX_SEGMENT_LEN {
                    exercise(&wrapped(&seg));
                }
            }
            FuzzInput::Mutated(edits) => {
                let mut whole = domain_frame();
                apply(&mut whole, &edits);
                exercise(&whole);
                let mut seg = DOMAIN_SEGMENT.as_bytes().to_vec();
                apply(&mut seg, &edits);
                if seg.len() <= MAX_SEGMENT_LEN {
                    exercise(&wrapped(&seg));
                }
            }
            FuzzInput::Field(edits) => {
                let mut seg = FIELD_SEGMENT.as_bytes().to_vec();
                apply(&mut seg, &edits);
                if seg.len() <= MAX_SEGMENT_LEN {
                    exercise(&field_frame(&seg));
                }
            }
            FuzzInput::RoundTrip(r, cn, unit) => {
                let mut r = *r;
                let device = DeviceProfile { unit, ..DeviceProfile::default() };
                r.interval_s = cn.interval_s(device.realtime_interval_s).unwrap_or_default();
                let frame = from_reading(&r, cn, "410108HJ0000000000000001", "123456", 39, &device)
                    .expect("a valid reading makes a frame");
                let decoded = decode(&encode(&frame).expect("fits")).expect("decodes");
                prop_assert_eq!(&decoded, &frame);
                prop_assert_eq!(read_back(&decoded, &device, &r).reading, judged(&r).0);
            }
        }
    }
}
