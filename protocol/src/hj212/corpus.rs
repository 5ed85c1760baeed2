//! A corpus of frames in the shapes vendors send: each one decoded to its values, or refused with
//! a clear reason.

use super::*;
use crate::payload::{Flag, Metric, Reading};
use crate::time::{EventTime, SECOND};

const HEAD: &str =
    "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4";

fn framed(seg: &str) -> Vec<u8> {
    wrap_segment(seg).expect("fits")
}

/// Decode, reassemble, judge: the reading of a whole frame.
fn values_of(packets: &[Vec<u8>]) -> Result<Values, Hj212Error> {
    let mut r = Reassembler::new(4);
    let mut whole = None;
    for p in packets {
        whole = r.push(decode(p)?)?;
    }
    let frame = whole.expect("the last packet completes the frame");
    read_values(&frame, &DeviceProfile::default(), 1, 0)
}

fn reading(bytes: Vec<u8>) -> Reading {
    match values_of(&[bytes]) {
        Ok(v) => {
            assert!(v.dropped.is_empty(), "{:?}", v.dropped);
            v.reading
        }
        Err(e) => panic!("refused: {e}"),
    }
}

#[test]
fn separators_flags_and_missing_header_flag() {
    let shapes = [
        // `;` between groups, `,` inside them, per-factor flags.
        "DataTime=20170102150000;a34004-Rtd=30.5,a34004-Flag=N;a34002-Rtd=60,a34002-Flag=N",
        // `;` everywhere, no flags.
        "DataTime=20170102150000;a34004-Rtd=30.5;a34002-Rtd=60",
        // `,` everywhere.
        "DataTime=20170102150000,a34004-Rtd=30.5,a34002-Rtd=60,",
        // Vendor spellings.
        "DataTime=20170102150000;PM25-Rtd=30.5;PM10-Rtd=60;",
    ];
    for cp in shapes {
        for head in [HEAD, &HEAD.replace(";Flag=4", "")] {
            let r = reading(framed(&format!("{head};CP=&&{cp}&&")));
            assert_eq!((r.pm25, r.pm10), (Some(30.5), Some(60.0)), "{cp}");
            assert_eq!(r.ts, EventTime(1_483_340_400_000));
        }
    }
}

#[test]
fn minute_hour_and_day_data_with_min_avg_max() {
    for (cn, interval) in [(2051, 60), (2061, 3_600), (2031, 86_400)] {
        let seg = format!(
            "{};CP=&&DataTime=20170102000000;a34004-Min=10,a34004-Avg=20,a34004-Max=30,a34004-Flag=N;a01007-Min=0,a01007-Avg=1.5,a01007-Max=4&&",
            HEAD.replace("CN=2011", &format!("CN={cn}"))
        );
        let r = reading(framed(&seg));
        assert_eq!((r.pm25, r.wind_ms), (Some(20.0), Some(1.5)), "{cn}");
        assert_eq!(r.interval_s, interval);
        assert_eq!(
            r.ts,
            EventTime(1_483_286_400_000) + i64::from(interval) * SECOND
        );
    }
}

#[test]
fn lowercase_crc_extra_ampersands_and_nul_padding() {
    let seg = format!("{HEAD};CP=&&DataTime=20170102150000;a34004-Rtd=30&&");
    let upper = framed(&seg);
    let n = upper.len();
    let mut lower = upper.clone();
    lower[n - 6..n - 2].make_ascii_lowercase();
    assert_ne!(lower, upper, "this CRC has letters");
    let mut nul = upper.clone();
    nul.push(0);
    let mut nuls = vec![0, 0];
    nuls.extend_from_slice(&upper);
    nuls.extend_from_slice(&[0, 0]);
    let extra_end = framed(&seg.replace("30&&", "30&&&&"));
    let extra_both = framed(&seg.replace("CP=&&", "CP=&&&&").replace("30&&", "30&&&&"));
    for bytes in [lower, nul, nuls, extra_end, extra_both] {
        assert_eq!(reading(bytes).pm25, Some(30.0));
    }
}

#[test]
fn split_packets_are_one_reading() {
    let packet = |no: u8, cp: &str| {
        framed(&format!(
            "{};PNUM=2;PNO={no};CP=&&DataTime=20170102150000;{cp}&&",
            HEAD.replace("Flag=4", "Flag=6")
        ))
    };
    let packets = [
        packet(1, "a34004-Rtd=30,a34004-Flag=N"),
        packet(2, "a34002-Rtd=60,a34002-Flag=N;a21004-Rtd=12"),
    ];
    let v = values_of(&packets).expect("reassembled");
    assert_eq!((v.reading.pm25, v.reading.pm10), (Some(30.0), Some(60.0)));
    assert_eq!(v.reading.no2, Some(12.0), "the gas of the second packet");
    assert!(v.dropped.is_empty(), "{:?}", v.dropped);
    // Out of order, the same.
    let swapped = [packets[1].clone(), packets[0].clone()];
    assert_eq!(values_of(&swapped).expect("reassembled").reading, v.reading);
}

#[test]
fn every_st_of_dust_monitors_and_every_flag_of_the_standard() {
    for st in [39, 22, 31] {
        let seg = format!(
            "{};CP=&&DataTime=20170102150000;a34004-Rtd=30&&",
            HEAD.replace("ST=39", &format!("ST={st}"))
        );
        let f = decode(&framed(&seg)).expect("decodes");
        assert_eq!(f.st, st);
        assert_eq!(reading(framed(&seg)).pm25, Some(30.0));
    }
    for letter in ['N', 'F', 'M', 'S', 'D', 'C', 'T', 'B'] {
        let seg =
            format!("{HEAD};CP=&&DataTime=20170102150000;a34004-Rtd=30,a34004-Flag={letter}&&");
        let r = reading(framed(&seg));
        assert_eq!(
            r.pm25,
            Some(30.0),
            "a plausible value is kept whatever its flag"
        );
        assert_eq!(r.flag(Metric::Pm25).letter(), letter);
        assert_eq!(r.flag(Metric::Pm25).is_valid(), letter == 'N');
    }
    assert_eq!(Flag::from_letter('n'), None, "flags are upper case");
}

#[test]
fn the_field_segment_of_the_fuzz_test_decodes() {
    let seg = super::tests::FIELD_SEGMENT;
    let v = values_of(&[super::tests::field_frame(seg.as_bytes())]).expect("decodes");
    assert_eq!((v.reading.pm25, v.reading.tsp), (Some(25.0), Some(90.0)));
    assert_eq!(v.reading.interval_s, 60);
    let dropped: Vec<&str> = v.dropped.iter().map(|d| d.factor).collect();
    assert_eq!(v.reading.no2, Some(35.0));
    assert_eq!(dropped, ["a01006", "a34002", "other", "a01001"]);
}

#[test]
fn refusals_name_the_reason() {
    let good = format!("{HEAD};CP=&&DataTime=20170102150000;a34004-Rtd=30&&");
    let mut bad_crc = framed(&good);
    let n = bad_crc.len();
    bad_crc[n - 3] = if bad_crc[n - 3] == b'0' { b'1' } else { b'0' };
    let no_time = framed(&good.replace("DataTime=20170102150000;", ""));
    let bad_time = framed(&good.replace("20170102150000;", "20171302150000;"));
    let inside = framed(&good.replace(";a34004", "&&;a34004"));
    let no_cn = framed(&good.replace("CN=2011;", ""));
    let mut cut = framed(&good);
    cut.truncate(n - 10);
    let mut garbage_after = framed(&good);
    garbage_after.extend_from_slice(b"\0x");
    let cases = [
        (bad_crc, "bad_crc"),
        (no_time, "missing_field"),
        (bad_time, "bad_datatime"),
        (inside, "malformed"),
        (no_cn, "missing_field"),
        (cut, "truncated"),
        (garbage_after, "trailing_bytes"),
    ];
    for (bytes, label) in cases {
        let e = values_of(&[bytes]).expect_err(label);
        assert_eq!(e.label(), label, "{e}");
        assert!(
            e.to_string().len() > 20,
            "a message a person can act on: {e}"
        );
    }
}
