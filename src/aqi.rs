//! Chinese AQI (HJ 633-2012) from PM2.5 and PM10 concentrations (docs/domain.md, AQI).

use serde::Serialize;

/// IAQI breakpoints.
const IAQI: [f64; 8] = [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0];
/// PM2.5 24-h breakpoints, µg/m³.
const PM25: [f64; 8] = [0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 350.0, 500.0];
/// PM10 24-h breakpoints, µg/m³.
const PM10: [f64; 8] = [0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0];

fn iaqi(c: f64, bp: &[f64; 8]) -> f64 {
    if !c.is_finite() || c <= 0.0 {
        return 0.0;
    }
    for i in 1..bp.len() {
        if c <= bp[i] {
            let (lo, hi) = (bp[i - 1], bp[i]);
            return (IAQI[i] - IAQI[i - 1]) / (hi - lo) * (c - lo) + IAQI[i - 1];
        }
    }
    // Above the table: HJ 633 caps the index at 500.
    500.0
}

/// AQI (rounded up, as HJ 633 prescribes) from whatever of PM2.5 and PM10 is known.
pub fn aqi(pm25: Option<f64>, pm10: Option<f64>) -> Option<u32> {
    let a = pm25.map(|c| iaqi(c, &PM25));
    let b = pm10.map(|c| iaqi(c, &PM10));
    let worst = match (a, b) {
        (Some(x), Some(y)) => x.max(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    Some(worst.ceil() as u32)
}

/// AQI category with its official colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Category {
    pub name: &'static str,
    pub name_zh: &'static str,
    pub colour: &'static str,
}

pub fn category(aqi: u32) -> Category {
    let (name, name_zh, colour) = match aqi {
        0..=50 => ("Good", "优", "#00E400"),
        51..=100 => ("Moderate", "良", "#FFFF00"),
        101..=150 => ("Lightly polluted", "轻度污染", "#FF7E00"),
        151..=200 => ("Moderately polluted", "中度污染", "#FF0000"),
        201..=300 => ("Heavily polluted", "重度污染", "#99004C"),
        _ => ("Severely polluted", "严重污染", "#7E0023"),
    };
    Category {
        name,
        name_zh,
        colour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoints_match_hj633() {
        assert_eq!(aqi(Some(35.0), None), Some(50));
        assert_eq!(aqi(Some(75.0), None), Some(100));
        assert_eq!(aqi(None, Some(150.0)), Some(100));
        assert_eq!(aqi(Some(250.0), Some(100.0)), Some(300));
        // Between breakpoints: linear, rounded up.
        assert_eq!(aqi(Some(55.0), None), Some(75));
        assert_eq!(aqi(Some(900.0), None), Some(500));
        assert_eq!(aqi(None, None), None);
    }

    #[test]
    fn categories_use_official_colours() {
        assert_eq!(category(50).colour, "#00E400");
        assert_eq!(category(51).colour, "#FFFF00");
        assert_eq!(category(301).name_zh, "严重污染");
    }
}
