//! Event time: when something happened at a site, as the device or the rules saw it. One type at
//! the boundaries between layers, so a count of milliseconds is never mistaken for seconds or for
//! wall-clock time; the named durations replace bare `60_000`-style literals.

use chrono::{NaiveDate, NaiveTime, TimeZone, Timelike};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;
use thiserror::Error;

/// One second, in milliseconds.
pub const SECOND: i64 = 1_000;
/// One minute, in milliseconds.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour, in milliseconds.
pub const HOUR: i64 = 60 * MINUTE;
/// One day of 24 hours, in milliseconds.
pub const DAY: i64 = 24 * HOUR;

/// An instant in event time: Unix milliseconds UTC. Serialised as the bare number, so the JSON of
/// the API and of the wire contract is what it was with plain `i64`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Unix milliseconds.
    pub const fn ms(self) -> i64 {
        self.0
    }

    /// The start of the minute this instant falls in (event time is judged per minute).
    pub const fn floor_minute(self) -> EventTime {
        EventTime(self.0.div_euclid(MINUTE) * MINUTE)
    }

    /// The UTC date-time, when in chrono's range.
    pub fn to_utc(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.0)
    }

    /// The local calendar date in `zone`, when in chrono's range.
    pub fn local_date(self, zone: Zone) -> Option<NaiveDate> {
        self.to_utc()
            .map(|t| t.with_timezone(&zone.tz()).date_naive())
    }

    /// The local time of day in `zone`, to the minute.
    pub fn local_time_of_day(self, zone: Zone) -> Option<TimeOfDay> {
        self.to_utc().map(|t| {
            let t = t.with_timezone(&zone.tz());
            TimeOfDay::from_minutes((t.hour() * 60 + t.minute()) as u16)
        })
    }
}

impl From<i64> for EventTime {
    fn from(ms: i64) -> EventTime {
        EventTime(ms)
    }
}

impl From<EventTime> for i64 {
    fn from(t: EventTime) -> i64 {
        t.0
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_utc() {
            Some(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
            None => write!(f, "{} ms", self.0),
        }
    }
}

/// Later by a duration in milliseconds (`t + 5 * MINUTE`).
impl Add<i64> for EventTime {
    type Output = EventTime;
    fn add(self, ms: i64) -> EventTime {
        EventTime(self.0.saturating_add(ms))
    }
}

impl AddAssign<i64> for EventTime {
    fn add_assign(&mut self, ms: i64) {
        *self = *self + ms;
    }
}

/// Earlier by a duration in milliseconds.
impl Sub<i64> for EventTime {
    type Output = EventTime;
    fn sub(self, ms: i64) -> EventTime {
        EventTime(self.0.saturating_sub(ms))
    }
}

/// The duration between two instants, in milliseconds.
impl Sub for EventTime {
    type Output = i64;
    fn sub(self, earlier: EventTime) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A time of day to the minute (`HH:MM`), as rule windows, quiet hours and scenario shifts give
/// it. Minutes after midnight, 0..1440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("time of day `{0}` is not HH:MM (00:00 to 23:59)")]
pub struct TimeOfDayError(pub String);

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);

    /// Minutes after midnight; wraps past 24 h.
    pub const fn from_minutes(minutes: u16) -> TimeOfDay {
        TimeOfDay(minutes % (24 * 60))
    }

    /// `HH:MM` (one or two digits each, surrounding blanks ignored). The one parser of times of
    /// day, so every setting that takes one accepts the same text.
    pub fn parse(s: &str) -> Result<TimeOfDay, TimeOfDayError> {
        let bad = || TimeOfDayError(s.to_string());
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let digits = |p: &str| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h >= 24 || m >= 60 {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }

    /// Minutes after midnight.
    pub const fn minutes(self) -> u16 {
        self.0
    }

    /// Milliseconds after midnight.
    pub const fn ms(self) -> i64 {
        self.0 as i64 * MINUTE
    }

    /// Seconds after midnight.
    pub const fn seconds(self) -> u32 {
        self.0 as u32 * 60
    }

    pub fn to_naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(u32::from(self.0 / 60), u32::from(self.0 % 60), 0)
            .unwrap_or(NaiveTime::MIN)
    }

    /// Whether `t` lies in [self, end); a window whose end is before its start wraps past
    /// midnight (22:00-06:00).
    pub fn window_contains(self, end: TimeOfDay, t: TimeOfDay) -> bool {
        if self <= end {
            self <= t && t < end
        } else {
            t >= self || t < end
        }
    }
}

impl FromStr for TimeOfDay {
    type Err = TimeOfDayError;
    fn from_str(s: &str) -> Result<TimeOfDay, TimeOfDayError> {
        TimeOfDay::parse(s)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// The office's time zone (IANA name), parsed once from the configuration and passed on as this
/// type. Local days, reports and quiet hours are in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown time zone `{0}` (an IANA name such as Asia/Shanghai)")]
pub struct ZoneError(pub String);

impl Zone {
    /// China Standard Time, the default.
    pub const SHANGHAI: Zone = Zone(chrono_tz::Asia::Shanghai);

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Local midnight starting `date`, in event time (the earliest one if the zone repeats it).
    pub fn day_start(self, date: NaiveDate) -> Option<EventTime> {
        self.0
            .from_local_datetime(&date.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| EventTime(t.timestamp_millis()))
    }

    /// The local day `date` as [start, end) in event time (the epoch for a date out of range).
    pub fn day_bounds(self, date: NaiveDate) -> (EventTime, EventTime) {
        let start = |d: NaiveDate| self.day_start(d).unwrap_or_default();
        (start(date), start(date.succ_opt().unwrap_or(date)))
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::SHANGHAI
    }
}

impl From<chrono_tz::Tz> for Zone {
    fn from(tz: chrono_tz::Tz) -> Zone {
        Zone(tz)
    }
}

impl From<Zone> for chrono_tz::Tz {
    fn from(z: Zone) -> chrono_tz::Tz {
        z.0
    }
}

impl FromStr for Zone {
    type Err = ZoneError;
    fn from_str(s: &str) -> Result<Zone, ZoneError> {
        s.trim()
            .parse::<chrono_tz::Tz>()
            .map(Zone)
            .map_err(|_| ZoneError(s.to_string()))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_what_their_names_say() {
        assert_eq!(MINUTE, 60_000);
        assert_eq!(HOUR, 3_600_000);
        assert_eq!(DAY, 86_400_000);
        let t = EventTime(1_700_000_123_456);
        assert_eq!((t + HOUR) - t, HOUR);
        assert_eq!(t.floor_minute().ms() % MINUTE, 0);
        assert_eq!(EventTime(-1).floor_minute(), EventTime(-MINUTE));
    }

    #[test]
    fn event_time_is_a_bare_number_in_json() {
        let t = EventTime(1_483_200_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1483200000000");
        assert_eq!(
            serde_json::from_str::<EventTime>("1483200000000").unwrap(),
            t
        );
    }

    #[test]
    fn time_of_day_parses_once_for_everyone() {
        assert_eq!(TimeOfDay::parse("07:30").unwrap().minutes(), 450);
        assert_eq!(TimeOfDay::parse(" 7:05 ").unwrap().to_string(), "07:05");
        assert_eq!(TimeOfDay::parse("23:59").unwrap().ms(), 1439 * MINUTE);
        for bad in [
            "24:00", "12:60", "noon", "12", "-1:00", "12:5x", "123:00", "",
        ] {
            let e = TimeOfDay::parse(bad).unwrap_err();
            assert!(e.to_string().contains("HH:MM"), "{bad}: {e}");
        }
        let (night, morning) = (
            TimeOfDay::parse("22:00").unwrap(),
            TimeOfDay::parse("06:00").unwrap(),
        );
        assert!(night.window_contains(morning, TimeOfDay::parse("23:00").unwrap()));
        assert!(night.window_contains(morning, TimeOfDay::MIDNIGHT));
        assert!(!night.window_contains(morning, morning));
    }

    #[test]
    fn zone_is_parsed_with_a_clear_error_and_local_days_follow_it() {
        let z: Zone = "Asia/Shanghai".parse().unwrap();
        assert_eq!(z, Zone::default());
        let e = "Mars/Olympus".parse::<Zone>().unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"));
        // 2017-01-01 00:00 in Shanghai is 2016-12-31 16:00 UTC.
        let date = NaiveDate::from_ymd_opt(2017, 1, 1).unwrap();
        let start = z.day_start(date).unwrap();
        assert_eq!(start, EventTime(1_483_200_000_000));
        assert_eq!(z.day_bounds(date), (start, start + DAY));
        assert_eq!(start.local_date(z), Some(date));
        assert_eq!((start - MINUTE).local_date(z), date.pred_opt());
        assert_eq!(
            (start + 90 * MINUTE).local_time_of_day(z),
            TimeOfDay::parse("01:30").ok()
        );
        let json = serde_json::to_string(&z).unwrap();
        assert_eq!(json, "\"Asia/Shanghai\"");
        assert!(serde_json::from_str::<Zone>("\"Nowhere\"").is_err());
    }
}
