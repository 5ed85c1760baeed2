//! Chinese AQI (HJ 633-2012): individual indices (IAQI) of PM2.5, PM10, SO2, NO2, CO and O3, the
//! AQI as their largest and the primary pollutant (docs/domain.md, AQI).

use dustwatch_protocol::{Metric, Reading};
use serde::Serialize;

/// IAQI breakpoints.
const IAQI: [f64; 8] = [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0];
/// PM2.5 24-h breakpoints, µg/m³.
const PM25: [f64; 8] = [0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 350.0, 500.0];
/// PM10 24-h breakpoints, µg/m³.
const PM10: [f64; 8] = [0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0];
/// SO2 24-h breakpoints, µg/m³.
const SO2_24H: [f64; 8] = [0.0, 50.0, 150.0, 475.0, 800.0, 1600.0, 2100.0, 2620.0];
/// SO2 1-h breakpoints, µg/m³; the table stops at IAQI 200 (above 800 the 24-h table applies).
const SO2_1H: [f64; 5] = [0.0, 150.0, 500.0, 650.0, 800.0];
/// NO2 24-h breakpoints, µg/m³.
const NO2_24H: [f64; 8] = [0.0, 40.0, 80.0, 180.0, 280.0, 565.0, 750.0, 940.0];
/// NO2 1-h breakpoints, µg/m³.
const NO2_1H: [f64; 8] = [0.0, 100.0, 200.0, 700.0, 1200.0, 2340.0, 3090.0, 3840.0];
/// CO 24-h breakpoints, mg/m³.
const CO_24H: [f64; 8] = [0.0, 2.0, 4.0, 14.0, 24.0, 36.0, 48.0, 60.0];
/// CO 1-h breakpoints, mg/m³.
const CO_1H: [f64; 8] = [0.0, 5.0, 10.0, 35.0, 60.0, 90.0, 120.0, 150.0];
/// O3 1-h breakpoints, µg/m³.
const O3_1H: [f64; 8] = [0.0, 160.0, 200.0, 300.0, 400.0, 800.0, 1000.0, 1200.0];
/// O3 8-h breakpoints, µg/m³; the table stops at IAQI 300 (above 800 the 1-h table applies).
const O3_8H: [f64; 6] = [0.0, 100.0, 160.0, 215.0, 265.0, 800.0];

/// Interpolate within a table; `None` above its last breakpoint.
fn interpolate(c: f64, bp: &[f64]) -> Option<f64> {
    if !c.is_finite() || c <= 0.0 {
        return Some(0.0);
    }
    (1..bp.len()).find(|&i| c <= bp[i]).map(|i| {
        let (lo, hi) = (bp[i - 1], bp[i]);
        (IAQI[i] - IAQI[i - 1]) / (hi - lo) * (c - lo) + IAQI[i - 1]
    })
}

/// Interpolate, capping at 500 above the table, as HJ 633 does for the full tables.
fn iaqi(c: f64, bp: &[f64; 8]) -> f64 {
    interpolate(c, bp).unwrap_or(500.0)
}

/// A pollutant of the AQI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pollutant {
    Pm25,
    Pm10,
    So2,
    No2,
    Co,
    O3,
}

impl Pollutant {
    pub const ALL: [Pollutant; 6] = [
        Pollutant::Pm25,
        Pollutant::Pm10,
        Pollutant::So2,
        Pollutant::No2,
        Pollutant::Co,
        Pollutant::O3,
    ];

    /// The metric whose concentration this pollutant's index is computed from.
    pub fn metric(self) -> Metric {
        match self {
            Pollutant::Pm25 => Metric::Pm25,
            Pollutant::Pm10 => Metric::Pm10,
            Pollutant::So2 => Metric::So2,
            Pollutant::No2 => Metric::No2,
            Pollutant::Co => Metric::Co,
            Pollutant::O3 => Metric::O3,
        }
    }

    /// The name the bulletins print.
    pub fn label(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "PM2.5",
            Pollutant::Pm10 => "PM10",
            Pollutant::So2 => "SO2",
            Pollutant::No2 => "NO2",
            Pollutant::Co => "CO",
            Pollutant::O3 => "O3",
        }
    }
}

/// Which averaging period a concentration stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Hourly (real-time) index: 1-hour tables of SO2, NO2, CO and O3; PM has only 24-hour tables.
    Hour,
    /// Daily index: 24-hour tables, and O3 as its daily maximum 8-hour mean.
    Day,
}

/// The individual index of one pollutant's concentration (µg/m³, CO mg/m³).
pub fn sub_index(p: Pollutant, c: f64, period: Period) -> f64 {
    match (p, period) {
        (Pollutant::Pm25, _) => iaqi(c, &PM25),
        (Pollutant::Pm10, _) => iaqi(c, &PM10),
        // Above 800 µg/m³ HJ 633 judges SO2 by its 24-hour table.
        (Pollutant::So2, Period::Hour) => {
            interpolate(c, &SO2_1H).unwrap_or_else(|| iaqi(c, &SO2_24H))
        }
        (Pollutant::So2, Period::Day) => iaqi(c, &SO2_24H),
        (Pollutant::No2, Period::Hour) => iaqi(c, &NO2_1H),
        (Pollutant::No2, Period::Day) => iaqi(c, &NO2_24H),
        (Pollutant::Co, Period::Hour) => iaqi(c, &CO_1H),
        (Pollutant::Co, Period::Day) => iaqi(c, &CO_24H),
        (Pollutant::O3, Period::Hour) => iaqi(c, &O3_1H),
        // Above 800 µg/m³ the 8-hour table ends; the 1-hour table judges it.
        (Pollutant::O3, Period::Day) => interpolate(c, &O3_8H).unwrap_or_else(|| iaqi(c, &O3_1H)),
    }
}

/// An AQI with its parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aqi {
    /// The largest individual index, rounded up.
    pub value: u32,
    /// The pollutants whose index is the AQI; none when the AQI is 50 or less (HJ 633 names a
    /// primary pollutant only when the air is not good).
    pub primary: Vec<Pollutant>,
    /// Every pollutant known, with its individual index rounded up.
    pub sub_indices: Vec<(Pollutant, u32)>,
}

/// The AQI of whatever pollutants `conc` knows (`None` when it knows none).
pub fn compute(conc: impl Fn(Pollutant) -> Option<f64>, period: Period) -> Option<Aqi> {
    let sub_indices: Vec<(Pollutant, u32)> = Pollutant::ALL
        .into_iter()
        .filter_map(|p| conc(p).map(|c| (p, sub_index(p, c, period).ceil() as u32)))
        .collect();
    let value = sub_indices.iter().map(|(_, i)| *i).max()?;
    let primary = if value > 50 {
        sub_indices
            .iter()
            .filter(|(_, i)| *i == value)
            .map(|(p, _)| *p)
            .collect()
    } else {
        Vec::new()
    };
    Some(Aqi {
        value,
        primary,
        sub_indices,
    })
}

/// The hourly AQI of one reading's valid values.
pub fn of_reading(r: &Reading) -> Option<Aqi> {
    compute(|p| r.valid(p.metric()), Period::Hour)
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

    /// The daily AQI of whatever of PM2.5 and PM10 is known.
    fn aqi(pm25: Option<f64>, pm10: Option<f64>) -> Option<u32> {
        let conc = |p| match p {
            Pollutant::Pm25 => pm25,
            Pollutant::Pm10 => pm10,
            _ => None,
        };
        compute(conc, Period::Day).map(|a| a.value)
    }

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
    fn gas_tables_at_their_breakpoints() {
        let at = |p, c, period| sub_index(p, c, period).ceil() as u32;
        assert_eq!(at(Pollutant::No2, 200.0, Period::Hour), 100);
        assert_eq!(at(Pollutant::No2, 80.0, Period::Day), 100);
        assert_eq!(at(Pollutant::No2, 450.0, Period::Hour), 125);
        assert_eq!(at(Pollutant::Co, 10.0, Period::Hour), 100);
        assert_eq!(at(Pollutant::Co, 4.0, Period::Day), 100);
        assert_eq!(at(Pollutant::O3, 160.0, Period::Hour), 50);
        assert_eq!(
            at(Pollutant::O3, 160.0, Period::Day),
            100,
            "the 8-hour table"
        );
        assert_eq!(at(Pollutant::So2, 500.0, Period::Hour), 100);
        assert_eq!(at(Pollutant::So2, 150.0, Period::Day), 100);
        // Past the end of the short tables, the other table of the same pollutant.
        assert_eq!(at(Pollutant::So2, 1600.0, Period::Hour), 300);
        assert_eq!(at(Pollutant::O3, 1000.0, Period::Day), 400);
        assert_eq!(at(Pollutant::Co, 500.0, Period::Hour), 500, "capped");
    }

    #[test]
    fn the_largest_index_names_the_primary_pollutant() {
        let r = Reading {
            pm25: Some(25.0),
            pm10: Some(48.0),
            no2: Some(450.0),
            o3: Some(72.0),
            co: Some(0.7),
            ..Reading::default()
        };
        let a = of_reading(&r).expect("known");
        assert_eq!(a.value, 125);
        assert_eq!(a.primary, [Pollutant::No2]);
        assert_eq!(a.sub_indices.len(), 5);
        // Good air has no primary pollutant.
        let clean = Reading {
            no2: Some(30.0),
            pm10: Some(40.0),
            ..Reading::default()
        };
        let a = of_reading(&clean).expect("known");
        assert_eq!((a.value, a.primary.len()), (40, 0));
        // A flagged value is no measurement.
        let mut flagged = r.clone();
        flagged
            .flags
            .insert("no2".into(), dustwatch_protocol::Flag::C);
        assert_eq!(of_reading(&flagged).expect("known").value, 48);
        assert_eq!(of_reading(&Reading::default()), None);
    }

    #[test]
    fn categories_use_official_colours() {
        assert_eq!(category(50).colour, "#00E400");
        assert_eq!(category(51).colour, "#FFFF00");
        assert_eq!(category(301).name_zh, "严重污染");
    }
}
