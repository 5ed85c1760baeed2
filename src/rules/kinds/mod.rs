//! The rule kinds, one file each, named for what it judges. A kind reads what it needs (the
//! minute and its context, the closed day, the arriving reading) and says what should happen to
//! its alerts as `Decision`s; the engine applies them to the alert book in the order given.

pub mod data_gap;
pub mod device_fault;
pub mod night_work;
pub mod noise;
pub mod pm_window;
pub mod restriction;
pub mod sprinkling;

use super::alerts::{AlertBook, Raise, RuleKind, Transition};
use super::minute::Minute;
use super::profile::Severity;
use chrono::NaiveDate;
use chrono_tz::Tz;
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{Level, Phase};
use std::borrow::Cow;

/// One minute of one site being judged.
#[derive(Debug, Clone, Copy)]
pub struct MinuteContext<'a> {
    pub site: &'a str,
    pub phase: Phase,
    /// Start of the minute, Unix ms.
    pub start: i64,
    /// The city level in force during the minute (set at or before its start).
    pub level: Level,
    pub minute: &'a Minute,
    /// The same minute at the site's reference station.
    pub reference: Option<&'a Minute>,
    /// The site's reference station, when it has one other than itself.
    pub reference_id: Option<&'a str>,
    pub tz: Tz,
}

impl MinuteContext<'_> {
    /// End of the minute (exclusive), Unix ms.
    pub fn end(&self) -> i64 {
        self.start + MINUTE
    }

    /// True when this minute is the last of a tumbling window of `window_min` minutes.
    pub fn closes_window(&self, window_min: i64) -> bool {
        self.end() % (window_min * MINUTE) == 0
    }

    /// The local day of an instant.
    pub fn local_date(&self, ts: i64) -> NaiveDate {
        local_date(self.tz, ts)
    }
}

/// The local day of an instant in `tz`.
pub fn local_date(tz: Tz, ts: i64) -> NaiveDate {
    use chrono::TimeZone;
    tz.timestamp_millis_opt(ts)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// What a rule decided for one of its alerts at a site.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// The condition holds: open the alert, or update (re-activate) the open one.
    Raise {
        rule: Cow<'a, str>,
        kind: RuleKind,
        severity: Severity,
        ts: i64,
        level: Level,
        evidence: serde_json::Value,
    },
    /// The condition is gone: the re-inspection period starts.
    Clear { rule: Cow<'a, str>, ts: i64 },
    /// Not clean, not over the raise condition: a running re-inspection starts again.
    Hold { rule: Cow<'a, str>, ts: i64 },
    /// Gone for good at once (data is back): clear and close.
    Resolve { rule: Cow<'a, str>, ts: i64 },
    /// What the open alert was raised on no longer holds (data that arrived late): close it
    /// at once, saying why.
    Withdraw {
        rule: Cow<'a, str>,
        ts: i64,
        why: String,
    },
}

impl Decision<'_> {
    /// The same decision, owning its rule id.
    pub fn into_owned(self) -> Decision<'static> {
        let own = |rule: Cow<'_, str>| Cow::Owned(rule.into_owned());
        match self {
            Decision::Raise {
                rule,
                kind,
                severity,
                ts,
                level,
                evidence,
            } => Decision::Raise {
                rule: own(rule),
                kind,
                severity,
                ts,
                level,
                evidence,
            },
            Decision::Clear { rule, ts } => Decision::Clear {
                rule: own(rule),
                ts,
            },
            Decision::Hold { rule, ts } => Decision::Hold {
                rule: own(rule),
                ts,
            },
            Decision::Resolve { rule, ts } => Decision::Resolve {
                rule: own(rule),
                ts,
            },
            Decision::Withdraw { rule, ts, why } => Decision::Withdraw {
                rule: own(rule),
                ts,
                why,
            },
        }
    }

    /// Apply to `site`'s alerts; what changed is appended to `out`.
    pub fn apply(self, book: &mut AlertBook, site: &str, out: &mut Vec<Transition>) {
        match self {
            Decision::Raise {
                rule,
                kind,
                severity,
                ts,
                level,
                evidence,
            } => out.extend(book.raise(Raise {
                site,
                rule: &rule,
                kind,
                severity,
                ts,
                level,
                evidence,
            })),
            Decision::Clear { rule, ts } => out.extend(book.clear(site, &rule, ts)),
            Decision::Hold { rule, ts } => out.extend(book.hold(site, &rule, ts)),
            Decision::Resolve { rule, ts } => out.extend(book.resolve(site, &rule, ts)),
            Decision::Withdraw { rule, ts, why } => {
                out.extend(book.withdraw(site, &rule, ts, &why))
            }
        }
    }
}

/// The usual verdict of a counted window: `count` at or over `raise_at` raises, none clears,
/// some (below the threshold) is not clean and holds.
pub(crate) fn by_count<'a>(
    count: i64,
    raise_at: i64,
    rule: &'a str,
    ts: i64,
    raise: impl FnOnce() -> Decision<'a>,
) -> Decision<'a> {
    if count >= raise_at {
        raise()
    } else if count == 0 {
        Decision::Clear {
            rule: rule.into(),
            ts,
        }
    } else {
        Decision::Hold {
            rule: rule.into(),
            ts,
        }
    }
}

pub(crate) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A minute to judge, built the way the engine builds it.

    use super::*;
    use dustwatch_protocol::{EventTime, Metric, Reading};

    /// 2024-03-01T00:00:00Z (08:00 in Shanghai).
    pub const T0: i64 = 1_709_251_200_000;

    /// A minute holding one reading with these values.
    pub fn minute(values: &[(Metric, f64)]) -> Minute {
        let mut r = Reading {
            ts: EventTime(T0 + MINUTE),
            ..Default::default()
        };
        for (m, v) in values {
            r.set(*m, Some(*v));
        }
        let mut minute = Minute::default();
        minute.add(&r);
        minute
    }

    pub fn context<'a>(start: i64, minute: &'a Minute, level: Level) -> MinuteContext<'a> {
        MinuteContext {
            site: "s1",
            phase: Phase::Earthwork,
            start,
            level,
            minute,
            reference: None,
            reference_id: None,
            tz: chrono_tz::Asia::Shanghai,
        }
    }
}
