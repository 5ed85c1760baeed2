//! Local times of day in a profile (`HH:MM`), parsed once when the profile is loaded, and the
//! daily windows they bound (which may run past midnight).

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;

/// Minutes after local midnight, 0..1440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// `HH:MM` (00:00 to 23:59); `None` for anything else. The one `HH:MM` parser is
    /// protocol's, so the profile, quiet hours and scenarios accept the same text.
    pub fn parse(s: &str) -> Option<TimeOfDay> {
        dustwatch_protocol::TimeOfDay::parse(s)
            .ok()
            .map(|t| TimeOfDay(t.minutes()))
    }

    /// The local time of day of an instant (Unix ms) in `tz`; midnight when the instant has no
    /// single local time.
    pub fn of_instant(tz: Tz, ts: i64) -> TimeOfDay {
        tz.timestamp_millis_opt(ts)
            .single()
            .map_or(TimeOfDay(0), |t| {
                // hour < 24 and minute < 60: the sum fits u16.
                TimeOfDay((t.hour() * 60 + t.minute()) as u16)
            })
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

/// The local hours [start, end) of every day; when `end` is not after `start` the window runs
/// past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl DailyWindow {
    pub fn contains(&self, t: TimeOfDay) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).expect("valid HH:MM in the test")
    }

    #[test]
    fn parses_only_hh_mm() {
        assert_eq!(t("06:00").minutes(), 360);
        assert_eq!(t("23:59").minutes(), 1439);
        for bad in ["24:00", "12:60", "1200", "ab:cd", "", "-1:00"] {
            assert_eq!(TimeOfDay::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_window_may_run_past_midnight() {
        let night = DailyWindow {
            start: t("22:00"),
            end: t("06:00"),
        };
        assert!(night.contains(t("23:30")) && night.contains(t("00:00")));
        assert!(!night.contains(t("06:00")) && !night.contains(t("12:00")));
        let day = DailyWindow {
            start: t("06:00"),
            end: t("22:00"),
        };
        assert!(day.contains(t("06:00")) && !day.contains(t("22:00")));
    }

    #[test]
    fn an_instant_has_its_local_time_of_day() {
        // 2024-01-01T00:30:00Z is 08:30 in Shanghai.
        assert_eq!(
            TimeOfDay::of_instant(chrono_tz::Asia::Shanghai, 1_704_069_000_000).minutes(),
            510
        );
    }
}
