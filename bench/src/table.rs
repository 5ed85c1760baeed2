//! The printed figures: medians of rounds, and the rows of the Markdown table.

/// Median of a few measurements (the upper middle one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Measurements as printed beside their median.
pub fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the printed table.
pub struct Row {
    pub figure: String,
    pub measured: String,
    pub target: String,
    pub ratio: String,
}

pub fn row(
    figure: impl Into<String>,
    measured: impl Into<String>,
    target: &str,
    ratio: String,
) -> Row {
    Row {
        figure: figure.into(),
        measured: measured.into(),
        target: target.into(),
        ratio,
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}
