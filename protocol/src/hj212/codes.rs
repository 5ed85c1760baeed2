//! The code tables: commands (CN), factor codes, CP field suffixes and reply codes.

use crate::payload::Metric;

/// Command number (CN) of a data segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cn {
    /// 2011: real-time data (`code-Rtd`).
    RealTime,
    /// 2051: minute data (`code-Min/Avg/Max`).
    Minute,
    /// 2061: hour data.
    Hour,
    /// 2031: day data.
    Day,
    /// 9014: data reply (platform acknowledges an upload).
    DataReply,
    /// 9011: request reply (`QnRtn`).
    RequestReply,
    /// 9012: execution result (`ExeRtn`).
    ExecutionResult,
    /// 1062: set the real-time data interval (`RtdInterval`).
    SetInterval,
}

impl Cn {
    pub const ALL: [Cn; 8] = [
        Cn::RealTime,
        Cn::Minute,
        Cn::Hour,
        Cn::Day,
        Cn::DataReply,
        Cn::RequestReply,
        Cn::ExecutionResult,
        Cn::SetInterval,
    ];

    pub fn code(self) -> u16 {
        match self {
            Cn::RealTime => 2011,
            Cn::Minute => 2051,
            Cn::Hour => 2061,
            Cn::Day => 2031,
            Cn::DataReply => 9014,
            Cn::RequestReply => 9011,
            Cn::ExecutionResult => 9012,
            Cn::SetInterval => 1062,
        }
    }

    pub fn from_code(code: u16) -> Option<Cn> {
        Cn::ALL.into_iter().find(|cn| cn.code() == code)
    }

    /// True for the commands that carry monitoring data (2011, 2051, 2061, 2031).
    pub fn is_data(self) -> bool {
        self.interval_s(1).is_some()
    }

    /// Averaging interval of the data this command carries: the device's real-time interval for
    /// 2011, 60 s for 2051, 3,600 s for 2061, 86,400 s for 2031; `None` for non-data commands.
    pub fn interval_s(self, realtime_interval_s: u32) -> Option<u32> {
        match self {
            Cn::RealTime => Some(realtime_interval_s),
            Cn::Minute => Some(60),
            Cn::Hour => Some(3_600),
            Cn::Day => Some(86_400),
            _ => None,
        }
    }
}

/// A monitoring factor (pollutant or weather parameter) by its HJ 212 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// a34004
    Pm25,
    /// a34002
    Pm10,
    /// a34001
    Tsp,
    /// a34005; carried in frames, no dustwatch metric.
    Pm1,
    /// LA, dB(A)
    Noise,
    /// a01001, °C
    Temp,
    /// a01002, %
    Rh,
    /// a01006, kPa
    Pressure,
    /// a01007, m/s
    WindSpeed,
    /// a01008, degrees
    WindDir,
    /// a21004, nitrogen dioxide, µg/m³
    No2,
    /// a21026, sulphur dioxide, µg/m³
    So2,
    /// a05024, ozone, µg/m³
    O3,
    /// a21005, carbon monoxide, mg/m³
    Co,
}

impl Factor {
    pub const ALL: [Factor; 14] = [
        Factor::Pm25,
        Factor::Pm10,
        Factor::Tsp,
        Factor::Pm1,
        Factor::Noise,
        Factor::Temp,
        Factor::Rh,
        Factor::Pressure,
        Factor::WindSpeed,
        Factor::WindDir,
        Factor::No2,
        Factor::So2,
        Factor::O3,
        Factor::Co,
    ];

    /// Vendor spellings seen in the field, read as the standard code (ASCII case-insensitive).
    const ALIASES: [(&'static str, Factor); 6] = [
        ("PM25", Factor::Pm25),
        ("PM2.5", Factor::Pm25),
        ("PM10", Factor::Pm10),
        ("TSP", Factor::Tsp),
        ("PM1", Factor::Pm1),
        ("PM1.0", Factor::Pm1),
    ];

    pub fn code(self) -> &'static str {
        match self {
            Factor::Pm25 => "a34004",
            Factor::Pm10 => "a34002",
            Factor::Tsp => "a34001",
            Factor::Pm1 => "a34005",
            Factor::Noise => "LA",
            Factor::Temp => "a01001",
            Factor::Rh => "a01002",
            Factor::Pressure => "a01006",
            Factor::WindSpeed => "a01007",
            Factor::WindDir => "a01008",
            Factor::No2 => "a21004",
            Factor::So2 => "a21026",
            Factor::O3 => "a05024",
            Factor::Co => "a21005",
        }
    }

    /// The factor of a standard code (exact spelling).
    pub fn from_code(code: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The factor of a vendor alias (`PM25`, `PM2.5`, `PM10`, `TSP`, `PM1`, `PM1.0`).
    pub fn from_alias(name: &str) -> Option<Factor> {
        Factor::ALIASES
            .into_iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map(|(_, f)| f)
    }

    /// The dustwatch metric of this factor; `None` for PM1.0.
    pub fn metric(self) -> Option<Metric> {
        Some(match self {
            Factor::Pm25 => Metric::Pm25,
            Factor::Pm10 => Metric::Pm10,
            Factor::Tsp => Metric::Tsp,
            Factor::Pm1 => return None,
            Factor::Noise => Metric::NoiseDba,
            Factor::Temp => Metric::TempC,
            Factor::Rh => Metric::RhPct,
            Factor::Pressure => Metric::PressureKpa,
            Factor::WindSpeed => Metric::WindMs,
            Factor::WindDir => Metric::WindDeg,
            Factor::No2 => Metric::No2,
            Factor::So2 => Metric::So2,
            Factor::O3 => Metric::O3,
            Factor::Co => Metric::Co,
        })
    }

    pub fn from_metric(metric: Metric) -> Factor {
        match metric {
            Metric::Pm25 => Factor::Pm25,
            Metric::Pm10 => Factor::Pm10,
            Metric::Tsp => Factor::Tsp,
            Metric::NoiseDba => Factor::Noise,
            Metric::TempC => Factor::Temp,
            Metric::RhPct => Factor::Rh,
            Metric::PressureKpa => Factor::Pressure,
            Metric::WindMs => Factor::WindSpeed,
            Metric::WindDeg => Factor::WindDir,
            Metric::No2 => Factor::No2,
            Metric::So2 => Factor::So2,
            Metric::O3 => Factor::O3,
            Metric::Co => Factor::Co,
        }
    }

    /// Particulate factors, whose unit (µg/m³ or mg/m³) is a per-device setting.
    pub fn is_particulate(self) -> bool {
        matches!(
            self,
            Factor::Pm25 | Factor::Pm10 | Factor::Tsp | Factor::Pm1
        )
    }
}

/// The `factor` labels of per-field counters: every known factor's code, then `other`
/// (any code not listed, so the label set stays bounded whatever devices send).
pub const FACTOR_LABELS: [&str; 15] = [
    "a34004", "a34002", "a34001", "a34005", "LA", "a01001", "a01002", "a01006", "a01007", "a01008",
    "a21004", "a21026", "a05024", "a21005", "other",
];

/// The counter label of a factor code as written in a frame (`other` when not in
/// [`FACTOR_LABELS`]); vendor aliases (`PM25`) count under their standard code.
pub fn factor_label(code: &str) -> &'static str {
    let standard = Factor::from_code(code)
        .or_else(|| Factor::from_alias(code))
        .map(Factor::code);
    let code = standard.unwrap_or(code);
    FACTOR_LABELS
        .iter()
        .copied()
        .find(|l| *l == code && *l != "other")
        .unwrap_or("other")
}

/// The part of a CP key after the factor code: `a34004-Rtd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Rtd,
    Min,
    Avg,
    Max,
    Flag,
}

impl Field {
    /// In the order they are encoded.
    pub const ALL: [Field; 5] = [Field::Rtd, Field::Min, Field::Avg, Field::Max, Field::Flag];

    pub fn suffix(self) -> &'static str {
        match self {
            Field::Rtd => "Rtd",
            Field::Min => "Min",
            Field::Avg => "Avg",
            Field::Max => "Max",
            Field::Flag => "Flag",
        }
    }

    pub fn from_suffix(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.suffix() == s)
    }
}

/// `QnRtn` of a 9011 request reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QnRtn {
    /// 1: ready to execute.
    Ready,
    /// 2: request rejected.
    Rejected,
    /// 3: wrong password.
    BadPassword,
    /// 4: unknown MN.
    BadMn,
    /// 5: wrong ST.
    BadSt,
    /// 6: wrong Flag.
    BadFlag,
    /// 7: wrong QN.
    BadQn,
    /// 8: wrong CN.
    BadCn,
    /// 9: wrong CRC.
    BadCrc,
    /// 100: unknown error.
    Unknown,
}

impl QnRtn {
    pub fn code(self) -> u8 {
        match self {
            QnRtn::Ready => 1,
            QnRtn::Rejected => 2,
            QnRtn::BadPassword => 3,
            QnRtn::BadMn => 4,
            QnRtn::BadSt => 5,
            QnRtn::BadFlag => 6,
            QnRtn::BadQn => 7,
            QnRtn::BadCn => 8,
            QnRtn::BadCrc => 9,
            QnRtn::Unknown => 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for cn in Cn::ALL {
            assert_eq!(Cn::from_code(cn.code()), Some(cn));
        }
        for f in Factor::ALL {
            assert_eq!(Factor::from_code(f.code()), Some(f));
            if let Some(m) = f.metric() {
                assert_eq!(Factor::from_metric(m), f);
            }
        }
        for m in Metric::ALL {
            assert_eq!(Factor::from_metric(m).metric(), Some(m));
        }
        assert_eq!(Factor::from_alias("pm25"), Some(Factor::Pm25));
        assert_eq!(Factor::from_code("A34004"), None);
    }

    #[test]
    fn data_intervals() {
        assert_eq!(Cn::RealTime.interval_s(30), Some(30));
        assert_eq!(Cn::Minute.interval_s(30), Some(60));
        assert_eq!(Cn::Hour.interval_s(30), Some(3_600));
        assert_eq!(Cn::Day.interval_s(30), Some(86_400));
        assert!(!Cn::DataReply.is_data());
        assert!(Cn::Day.is_data());
    }

    #[test]
    fn factor_labels_are_bounded() {
        for f in Factor::ALL {
            assert_eq!(factor_label(f.code()), f.code());
        }
        assert_eq!(factor_label("PM25"), "a34004");
        assert_eq!(factor_label("a21004"), "a21004");
        assert_eq!(factor_label("a99999"), "other");
        assert_eq!(factor_label("other"), "other");
        for (i, f) in Factor::ALL.into_iter().enumerate() {
            assert_eq!(FACTOR_LABELS[i], f.code(), "labels follow Factor::ALL");
        }
    }
}
