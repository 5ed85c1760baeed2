//! `DataTime` and `QN` times: the device's local civil time, turned into Unix time with a fixed UTC
//! offset (China is +08:00 all year, no daylight saving).

use crate::time::{MINUTE, SECOND};
use std::fmt;

/// China Standard Time, +08:00, in minutes.
pub const CHINA_UTC_OFFSET_MIN: i32 = 480;

/// A validated local civil time `yyyyMMddHHmmss` (years 0000-9999, no leap seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl DataTime {
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let valid = year <= 9999
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(DataTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Parse exactly 14 digits `yyyyMMddHHmmss`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u16> { s.get(from..to)?.parse().ok() };
        DataTime::new(
            num(0, 4)?,
            u8::try_from(num(4, 6)?).ok()?,
            u8::try_from(num(6, 8)?).ok()?,
            u8::try_from(num(8, 10)?).ok()?,
            u8::try_from(num(10, 12)?).ok()?,
            u8::try_from(num(12, 14)?).ok()?,
        )
    }

    /// Unix milliseconds of this local time at `utc_offset_min` minutes east of UTC.
    pub fn to_unix_ms(self, utc_offset_min: i32) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let local_s = days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        (local_s - i64::from(utc_offset_min) * 60) * SECOND
    }

    /// The local time of Unix milliseconds `ms` (milliseconds dropped); `None` outside years
    /// 0000-9999.
    pub fn from_unix_ms(ms: i64, utc_offset_min: i32) -> Option<Self> {
        let local_ms = ms.checked_add(i64::from(utc_offset_min).checked_mul(MINUTE)?)?;
        let local_s = local_ms.div_euclid(1_000);
        let days = local_s.div_euclid(86_400);
        let secs = local_s.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        DataTime::new(
            u16::try_from(y).ok()?,
            u8::try_from(m).ok()?,
            u8::try_from(d).ok()?,
            u8::try_from(secs / 3_600).ok()?,
            u8::try_from(secs % 3_600 / 60).ok()?,
            u8::try_from(secs % 60).ok()?,
        )
    }
}

impl fmt::Display for DataTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A `QN` for Unix milliseconds `ms`: local `yyyyMMddHHmmssSSS`.
pub fn qn_from_unix_ms(ms: i64, utc_offset_min: i32) -> Option<String> {
    let t = DataTime::from_unix_ms(ms, utc_offset_min)?;
    Some(format!("{t}{:03}", ms.rem_euclid(1_000)))
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of `days_from_civil`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_vector_time_is_0700_utc() {
        let t = DataTime::parse("20170102150000").unwrap();
        // 2017-01-02T07:00:00Z
        assert_eq!(t.to_unix_ms(CHINA_UTC_OFFSET_MIN), 1_483_340_400_000);
        assert_eq!(
            DataTime::from_unix_ms(1_483_340_400_000, CHINA_UTC_OFFSET_MIN),
            Some(t)
        );
        assert_eq!(t.to_string(), "20170102150000");
    }

    #[test]
    fn rejects_impossible_times() {
        for bad in [
            "20170230120000",
            "20171301000000",
            "20170100000000",
            "20170101240000",
            "20170101006000",
            "20170101000060",
            "2017010100000",
            "201701010000000",
            "2017010100000a",
            "-2017010100000",
        ] {
            assert!(DataTime::parse(bad).is_none(), "{bad}");
        }
        assert!(DataTime::parse("20240229235959").is_some());
        assert!(DataTime::parse("20230229000000").is_none());
        assert!(DataTime::parse("19000229000000").is_none());
        assert!(DataTime::parse("20000229000000").is_some());
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..2_900_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn qn_carries_milliseconds() {
        assert_eq!(
            qn_from_unix_ms(1_483_340_400_123, CHINA_UTC_OFFSET_MIN).as_deref(),
            Some("20170102150000123")
        );
        assert!(DataTime::from_unix_ms(i64::MAX, 0).is_none());
        assert!(DataTime::from_unix_ms(i64::MIN, i32::MIN).is_none());
    }
}
