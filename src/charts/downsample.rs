//! Server-side downsampling: a series becomes at most one (min, mean, max) column per pixel, so no
//! chart draws more points than it has pixels, whatever the range.

use crate::store::SeriesPoint;

/// One pixel column of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Centre of the column's time span, Unix ms.
    pub ts: i64,
    /// Start of the first and end of the last point that fell into the column (for gap checks).
    pub first: i64,
    pub last: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub count: u64,
}

/// Fold `points` (sorted by time; each spanning `step_ms` from its `ts`) over [from, to) into at
/// most `columns` columns. Empty columns are left out, so the result never exceeds `columns`.
pub fn by_column(
    points: &[SeriesPoint],
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    columns: usize,
) -> Vec<Column> {
    let mut out: Vec<Column> = Vec::with_capacity(columns.min(points.len()));
    if columns == 0 || to_ms <= from_ms {
        return out;
    }
    let span = (to_ms - from_ms) as f64;
    let width = span / columns as f64;
    let mut current: Option<(usize, Column, f64)> = None;
    for p in points {
        if p.ts < from_ms || p.ts >= to_ms || p.count == 0 || !p.mean.is_finite() {
            continue;
        }
        let idx = (((p.ts - from_ms) as f64 / width) as usize).min(columns - 1);
        let (min, max) = (
            if p.min.is_finite() { p.min } else { p.mean },
            if p.max.is_finite() { p.max } else { p.mean },
        );
        match &mut current {
            Some((i, col, sum)) if *i == idx => {
                *sum += p.mean * p.count as f64;
                col.count += p.count;
                col.min = col.min.min(min);
                col.max = col.max.max(max);
                col.last = p.ts + step_ms;
            }
            _ => {
                if let Some((_, mut col, sum)) = current.take() {
                    col.mean = sum / col.count as f64;
                    out.push(col);
                }
                let centre = from_ms + ((idx as f64 + 0.5) * width) as i64;
                current = Some((
                    idx,
                    Column {
                        ts: centre,
                        first: p.ts,
                        last: p.ts + step_ms,
                        mean: 0.0,
                        min,
                        max,
                        count: p.count,
                    },
                    p.mean * p.count as f64,
                ));
            }
        }
    }
    if let Some((_, mut col, sum)) = current {
        col.mean = sum / col.count as f64;
        out.push(col);
    }
    out
}

/// Split columns into runs with no data gap: a gap is more than `max_gap_ms` between the end of
/// one column's data and the start of the next's. Gaps are drawn as gaps, never bridged.
pub fn segments(columns: &[Column], max_gap_ms: i64) -> Vec<&[Column]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..columns.len() {
        if columns[i].first - columns[i - 1].last > max_gap_ms {
            out.push(&columns[start..i]);
            start = i;
        }
    }
    if start < columns.len() {
        out.push(&columns[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::time::{DAY, HOUR, MINUTE};

    fn minute_points(n: i64, t0: i64) -> Vec<SeriesPoint> {
        (0..n)
            .map(|i| SeriesPoint {
                ts: t0 + i * MINUTE,
                mean: i as f64,
                min: i as f64 - 1.0,
                max: i as f64 + 1.0,
                count: 1,
            })
            .collect()
    }

    #[test]
    fn never_more_columns_than_pixels() {
        let pts = minute_points(1440, 0);
        let cols = by_column(&pts, 0, DAY, MINUTE, 700);
        assert!(cols.len() <= 700, "{}", cols.len());
        assert!(cols.len() >= 690);
        // Extremes survive the folding.
        let lo = cols.iter().map(|c| c.min).fold(f64::MAX, f64::min);
        let hi = cols.iter().map(|c| c.max).fold(f64::MIN, f64::max);
        assert_eq!((lo, hi), (-1.0, 1440.0));
        // Means are count-weighted means of the points they cover.
        let total: u64 = cols.iter().map(|c| c.count).sum();
        assert_eq!(total, 1440);
    }

    #[test]
    fn sparse_series_keeps_its_points() {
        let pts = minute_points(60, 0);
        let cols = by_column(&pts, 0, HOUR, MINUTE, 800);
        assert_eq!(cols.len(), 60);
        assert_eq!(
            segments(&cols, 120_000).len(),
            1,
            "no gap in a dense minute series"
        );
    }

    #[test]
    fn a_missing_hour_is_a_gap() {
        let mut pts = minute_points(60, 0);
        pts.extend(minute_points(60, 2 * HOUR));
        let cols = by_column(&pts, 0, 3 * HOUR, MINUTE, 500);
        let segs = segments(&cols, 180_000);
        assert_eq!(segs.len(), 2);
    }
}
