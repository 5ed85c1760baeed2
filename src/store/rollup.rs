//! Rollup arithmetic shared by the writer (partial aggregates per batch) and the reader (series
//! at any step): which bucket a reading falls in, and a running count, sum, min and max.

use dustwatch_protocol::time::SECOND;
/// Partial aggregate of one metric in one bucket.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Agg {
    pub(super) n: u64,
    pub(super) sum: f64,
    pub(super) lo: Option<f64>,
    pub(super) hi: Option<f64>,
}

impl Agg {
    pub(super) fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.lo = Some(self.lo.map_or(v, |x| x.min(v)));
        self.hi = Some(self.hi.map_or(v, |x| x.max(v)));
    }
}

/// The bucket of width `width` (ms) a reading ending at `ts` belongs to.
pub(super) fn bucket(ts: i64, width: i64) -> i64 {
    // ts is the END of the interval: (b, b + width] belongs to bucket b.
    (ts - 1).div_euclid(width) * width
}

/// A rollup table: its name and bucket width (ms).
pub(super) type RollupTable = (&'static str, i64);

/// Where a series at a step of `step_s` seconds is read from: the step in ms, and the coarsest
/// rollup table (name, bucket width) whose buckets tile it; `None` (raw readings) for sub-minute
/// steps. Steps outside one second to 31 days are refused.
pub(super) fn series_source(step_s: i64) -> Result<(i64, Option<RollupTable>), super::StoreError> {
    if !(1..=31 * 86_400).contains(&step_s) {
        return Err(super::StoreError::BadStep(step_s));
    }
    let step_ms = step_s * SECOND;
    let source = super::schema::ROLLUPS
        .iter()
        .rev()
        .find(|(_, width)| step_ms % width == 0)
        .copied();
    Ok((step_ms, source))
}

/// A series from the buckets that hold a value, oldest first.
pub(super) fn series_points(
    points: std::collections::BTreeMap<i64, Agg>,
) -> Vec<super::SeriesPoint> {
    points
        .into_iter()
        .filter(|(_, a)| a.n > 0)
        .map(|(ts, a)| super::SeriesPoint {
            ts,
            mean: a.sum / a.n as f64,
            min: a.lo.unwrap_or(f64::NAN),
            max: a.hi.unwrap_or(f64::NAN),
            count: a.n,
        })
        .collect()
}
