//! Query parameters of the HTTP API parsed into checked values: pure functions (no store, no
//! request), so every limit is decided in one place and property tests can throw any input at
//! them. All arithmetic is checked; anything out of range is a `QueryError` (a 400), never a
//! panic or a wrapped number that slips past a limit.

use crate::store::StateFilter;
use chrono::NaiveDate;
use dustwatch_protocol::time::{DAY, SECOND};
use dustwatch_protocol::RuleKind;
use thiserror::Error;

/// Longest time range one request may cover.
pub const MAX_SPAN_MS: i64 = 400 * DAY;
/// Most points one series request may return; a client asks for a coarser step instead.
pub const MAX_POINTS: i64 = 20_000;
/// Times a query may name: 0001-01-01 to 9999-12-31 (what RFC 3339 can spell), in Unix ms.
pub const MIN_TIME_MS: i64 = -62_135_596_800_000;
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Default series step, seconds.
pub const DEFAULT_STEP_S: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error("`{0}` is neither Unix ms nor RFC 3339 (years 0001-9999)")]
    Time(String),
    #[error("`{0}` is not a date (YYYY-MM-DD)")]
    Date(String),
    #[error("`from` must be before `to`, at most 400 days apart")]
    Range,
    #[error("`from` is after `to`, or the dates are more than 400 days apart")]
    DateRange,
    #[error("step `{0}` is not a whole number of seconds from 1 to 34560000 (400 days)")]
    Step(String),
    #[error("step {step} s gives more than {MAX_POINTS} points over this range")]
    TooManyPoints { step: i64 },
    #[error("state `{0}`: use open, active, cleared, closed or all")]
    AlertState(String),
    #[error("kind `{0}`: use window, restriction, sprinkling, noise, night, gap or fault")]
    RuleKind(String),
}

/// Shorten what is echoed back in an error.
fn echo(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A time in a query: Unix milliseconds or RFC 3339, within [`MIN_TIME_MS`, `MAX_TIME_MS`].
pub fn parse_time(s: &str) -> Result<i64, QueryError> {
    let ms = match s.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| QueryError::Time(echo(s)))?,
    };
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(QueryError::Time(echo(s)))
    }
}

/// A half-open time range `[from, to)`, `from < to`, at most [`MAX_SPAN_MS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

impl TimeRange {
    pub fn span_ms(self) -> i64 {
        // Cannot overflow: both ends are within the query time bounds.
        self.to - self.from
    }
}

/// `from`/`to` of a query; a missing `to` is `default_to` (clamped into the time bounds), a
/// missing `from` is `default_span_ms` before `to`.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    default_to: i64,
    default_span_ms: i64,
) -> Result<TimeRange, QueryError> {
    let to = match to {
        Some(t) => parse_time(t)?,
        None => default_to.clamp(MIN_TIME_MS, MAX_TIME_MS),
    };
    let from = match from {
        Some(f) => parse_time(f)?,
        None => to.saturating_sub(default_span_ms.clamp(1, MAX_SPAN_MS)),
    };
    if from >= to || to.checked_sub(from).is_none_or(|span| span > MAX_SPAN_MS) {
        return Err(QueryError::Range);
    }
    Ok(TimeRange { from, to })
}

/// A series step in seconds (default [`DEFAULT_STEP_S`]) that gives at most [`MAX_POINTS`]
/// points over `range`.
pub fn series_step(step: Option<&str>, range: TimeRange) -> Result<i64, QueryError> {
    let step = match step {
        None => DEFAULT_STEP_S,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=MAX_SPAN_MS / SECOND).contains(s))
            .ok_or_else(|| QueryError::Step(echo(s)))?,
    };
    // step * 1000 <= MAX_SPAN_MS: no overflow, never zero.
    if range.span_ms() / (step * SECOND) > MAX_POINTS {
        return Err(QueryError::TooManyPoints { step });
    }
    Ok(step)
}

/// A date in a query (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<NaiveDate, QueryError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| QueryError::Date(echo(s)))
}

/// `from`..=`to` as dates, at most 400 days apart.
pub fn date_range(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), QueryError> {
    let (from, to) = (parse_date(from)?, parse_date(to)?);
    let days = to.signed_duration_since(from).num_days();
    if !(0..=400).contains(&days) {
        return Err(QueryError::DateRange);
    }
    Ok((from, to))
}

/// An alert-state filter: one state, `open` (active or cleared), or `all` (no filter).
pub fn alert_states(s: &str) -> Result<Option<StateFilter>, QueryError> {
    if s == "all" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_: String| QueryError::AlertState(echo(s)))
}

/// A rule kind (`window`, `noise`, ...).
pub fn rule_kind(s: &str) -> Result<RuleKind, QueryError> {
    s.parse().map_err(|_| QueryError::RuleKind(echo(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alert_filters_parse_into_their_enums_or_say_what_is_allowed() {
        assert_eq!(alert_states("all"), Ok(None));
        assert_eq!(alert_states("open"), Ok(Some(StateFilter::Open)));
        assert_eq!(alert_states("cleared"), Ok(Some(StateFilter::Cleared)));
        let e = alert_states("Active").expect_err("names are lower case");
        assert_eq!(
            e.to_string(),
            "state `Active`: use open, active, cleared, closed or all"
        );
        assert_eq!(rule_kind("noise"), Ok(RuleKind::Noise));
        assert!(matches!(rule_kind("pm10"), Err(QueryError::RuleKind(_))));
    }

    #[test]
    fn huge_step_is_a_clear_error_not_a_division_by_zero() {
        let r = time_range(Some("0"), Some("86400000"), 0, DAY).expect("range");
        assert_eq!(
            series_step(Some("2305843009213693952"), r),
            Err(QueryError::Step("2305843009213693952".into()))
        );
        assert!(series_step(Some("0"), r).is_err());
        assert!(series_step(Some("-5"), r).is_err());
        assert_eq!(series_step(None, r), Ok(60));
        assert_eq!(
            series_step(Some("1"), r),
            Err(QueryError::TooManyPoints { step: 1 })
        );
    }

    #[test]
    fn extreme_times_do_not_slip_past_the_span_limit() {
        let min = i64::MIN.to_string();
        let max = i64::MAX.to_string();
        assert!(time_range(Some(&min), Some(&max), 0, DAY).is_err());
        assert!(time_range(Some("0"), Some(&max), 0, DAY).is_err());
        assert!(time_range(None, None, i64::MIN, DAY).is_ok());
        assert!(time_range(None, None, i64::MAX, DAY).is_ok());
        let span = (MAX_SPAN_MS + 1).to_string();
        assert_eq!(
            time_range(Some("0"), Some(&span), 0, DAY),
            Err(QueryError::Range)
        );
        let ok = time_range(
            Some("2017-01-01T00:00:00Z"),
            Some("2017-01-02T00:00:00+08:00"),
            0,
            1,
        );
        assert_eq!(
            ok,
            Ok(TimeRange {
                from: 1_483_228_800_000,
                to: 1_483_286_400_000
            })
        );
    }

    #[test]
    fn date_ranges_are_bounded() {
        assert!(date_range("2017-01-01", "2017-01-31").is_ok());
        assert_eq!(
            date_range("2017-02-01", "2017-01-31"),
            Err(QueryError::DateRange)
        );
        assert_eq!(
            date_range("0001-01-01", "9999-12-31"),
            Err(QueryError::DateRange)
        );
        assert!(matches!(
            date_range("x", "2017-01-01"),
            Err(QueryError::Date(_))
        ));
    }

    /// Query strings built from the characters and numbers that break parsers.
    fn query_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (-100_000_000_000_000i64..300_000_000_000_000).prop_map(|n| n.to_string()),
            "[0-9]{1,25}",
            "-?[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
            "[0-9]{4,6}-[0-9]{1,2}-[0-9]{1,2}",
            ".{0,30}",
            "[%&=+;#0-9a-fA-F]{0,20}",
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("from"),
            Just("to"),
            Just("step"),
            Just("metric"),
            Just("w"),
            Just("h"),
            Just("days"),
            Just("x"),
        ];
        proptest::collection::vec((key, query_value(), any::<bool>()), 0..5).prop_map(|kv| {
            kv.into_iter()
                .map(|(k, v, raw)| {
                    if raw {
                        format!("{k}={v}")
                    } else {
                        let enc: String = v
                            .bytes()
                            .map(|b| {
                                if b.is_ascii_alphanumeric() {
                                    (b as char).to_string()
                                } else {
                                    format!("%{b:02X}")
                                }
                            })
                            .collect();
                        format!("{k}={enc}")
                    }
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    proptest! {
        // Explicit case count: the issue asks for at least 100,000 per parser.
        #![proptest_config(ProptestConfig::with_cases(100_000))]

        /// Any query string through the real extractors and the checks: no panic, and whatever
        /// passes is within every limit.
        #[test]
        fn query_parsers_never_panic_and_hold_the_limits(
            q in query(),
            default_to in any::<i64>(),
            from_date in ".{0,12}",
            to_date in "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        ) {
            let uri: axum::http::Uri = match format!("/x?{q}").parse() {
                Ok(u) => u,
                Err(_) => return Ok(()),
            };
            let Ok(axum::extract::Query(p)) =
                axum::extract::Query::<super::super::api::SeriesQuery>::try_from_uri(&uri)
            else {
                return Ok(());
            };
            if let Ok(r) = time_range(p.from.as_deref(), p.to.as_deref(), default_to, DAY) {
                prop_assert!(r.from < r.to && r.span_ms() <= MAX_SPAN_MS);
                prop_assert!(r.from >= MIN_TIME_MS - MAX_SPAN_MS && r.to <= MAX_TIME_MS);
                if let Ok(step) = series_step(p.step.as_deref(), r) {
                    prop_assert!(step >= 1);
                    prop_assert!(r.span_ms() / (step * 1000) <= MAX_POINTS);
                }
            }
            if let Ok((f, t)) = date_range(&from_date, &to_date) {
                prop_assert!(f <= t);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Unix ms inside the bounds parse to themselves, and RFC 3339 renderings of them to the
        /// same instant.
        #[test]
        fn times_round_trip(ms in MIN_TIME_MS..=MAX_TIME_MS) {
            prop_assert_eq!(parse_time(&ms.to_string()), Ok(ms));
            let t = chrono::DateTime::from_timestamp_millis(ms).expect("in chrono's range");
            let text = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            if !text.starts_with('+') && !text.starts_with('-') {
                prop_assert_eq!(parse_time(&text), Ok(ms));
            }
        }
    }
}
