//! The readings and events tables as both readers query them: the statements (`$n`
//! placeholders, see `sql.rs`) and the mapping of a row to a [`Reading`] or an [`Event`].

use super::sql::AnyRow;
use super::StoreError;
use dustwatch_protocol::{Event, Flag, Metric, Reading};
use std::collections::BTreeMap;

/// A site's readings in [$2, $3), oldest first: device, header columns, flags, then one column
/// per metric in [`Metric::ALL`]'s order.
pub(crate) fn readings_between() -> String {
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    format!(
        "SELECT device, ts, boot, seq, interval_s, flags, {} FROM readings \
         WHERE site = $1 AND ts >= $2 AND ts < $3 ORDER BY ts",
        metrics.join(", ")
    )
}

/// A site's events in [$2, $3), oldest first.
pub(crate) const EVENTS_BETWEEN: &str = "SELECT device, ts, seq, boot, kind FROM events \
     WHERE site = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";

/// A row of [`readings_between`]: the device and its reading.
pub(crate) fn reading_of<R: AnyRow>(r: &R) -> Result<(String, Reading), StoreError>
where
    StoreError: From<R::Error>,
{
    let flags: Option<String> = r.col(5)?;
    let mut reading = Reading {
        ts: r.col(1)?,
        boot: u32_or_0(r.col(2)?),
        seq: u64_or_0(r.col(3)?),
        interval_s: u32_or_0(r.col(4)?),
        flags: flags_of(flags.as_deref())?,
        ..Default::default()
    };
    for (i, m) in Metric::ALL.into_iter().enumerate() {
        reading.set(m, r.col(6 + i)?);
    }
    Ok((r.col(0)?, reading))
}

/// A row of [`EVENTS_BETWEEN`]: the device and its event.
pub(crate) fn event_of<R: AnyRow>(r: &R) -> Result<(String, Event), StoreError>
where
    StoreError: From<R::Error>,
{
    let kind: String = r.col(4)?;
    let event = Event {
        ts: r.col(1)?,
        seq: u64_or_0(r.col(2)?),
        boot: u32_or_0(r.col(3)?),
        kind: parse_enum(&kind)?,
    };
    Ok((r.col(0)?, event))
}

/// Stored text of an enum; text no variant reads as is corruption, not a default.
pub(crate) fn parse_enum<T>(s: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("`{s}`: {e}")))
}

/// A reading's flags as stored (JSON; none stored: none).
pub(crate) fn flags_of(text: Option<&str>) -> Result<BTreeMap<String, Flag>, StoreError> {
    match text {
        Some(f) => serde_json::from_str(f).map_err(|e| StoreError::Corrupt(e.to_string())),
        None => Ok(BTreeMap::new()),
    }
}

// Counters are stored signed (PostgreSQL has no unsigned types); out of range reads as 0.
fn u32_or_0(v: Option<i64>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn u64_or_0(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
