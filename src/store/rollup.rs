//! Rollup arithmetic shared by the writer (partial aggregates per batch) and the reader (series
//! at any step): which bucket a reading falls in, and a running count, sum, min and max.

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
