//! JSON payloads of contract v1.

use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One averaging interval of a monitor: values are means over the interval, absent = not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reading {
    /// End of the interval (event time; Unix milliseconds UTC on the wire).
    pub ts: EventTime,
    /// Rises by one per message within a boot.
    pub seq: u64,
    /// Rises at each device restart.
    pub boot: u32,
    /// Length of the averaging interval in seconds.
    pub interval_s: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pm25: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pm10: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsp: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_dba: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rh_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure_kpa: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wind_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wind_deg: Option<f64>,
    /// Gases of ambient air stations (HJ 212 `a21004`, `a21026`, `a05024`), µg/m³.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o3: Option<f64>,
    /// Carbon monoxide (`a21005`), mg/m³ as stations and HJ 633 give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co: Option<f64>,
    /// HJ 212 data flags per metric name; absent means `N` (normal).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, Flag>,
}

impl Reading {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Pm25 => self.pm25,
            Metric::Pm10 => self.pm10,
            Metric::Tsp => self.tsp,
            Metric::NoiseDba => self.noise_dba,
            Metric::TempC => self.temp_c,
            Metric::RhPct => self.rh_pct,
            Metric::PressureKpa => self.pressure_kpa,
            Metric::WindMs => self.wind_ms,
            Metric::WindDeg => self.wind_deg,
            Metric::No2 => self.no2,
            Metric::So2 => self.so2,
            Metric::O3 => self.o3,
            Metric::Co => self.co,
        }
    }

    pub fn set(&mut self, metric: Metric, value: Option<f64>) {
        let slot = match metric {
            Metric::Pm25 => &mut self.pm25,
            Metric::Pm10 => &mut self.pm10,
            Metric::Tsp => &mut self.tsp,
            Metric::NoiseDba => &mut self.noise_dba,
            Metric::TempC => &mut self.temp_c,
            Metric::RhPct => &mut self.rh_pct,
            Metric::PressureKpa => &mut self.pressure_kpa,
            Metric::WindMs => &mut self.wind_ms,
            Metric::WindDeg => &mut self.wind_deg,
            Metric::No2 => &mut self.no2,
            Metric::So2 => &mut self.so2,
            Metric::O3 => &mut self.o3,
            Metric::Co => &mut self.co,
        };
        *slot = value;
    }

    /// The data flag of a metric (`N` when absent).
    pub fn flag(&self, metric: Metric) -> Flag {
        self.flags.get(metric.name()).copied().unwrap_or(Flag::N)
    }

    /// A value that counts for means and exceedances: present and flagged `N`.
    pub fn valid(&self, metric: Metric) -> Option<f64> {
        self.get(metric).filter(|_| self.flag(metric).is_valid())
    }
}

/// The metrics a reading carries, with their JSON field names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_metric
)]
pub enum Metric {
    Pm25,
    Pm10,
    Tsp,
    NoiseDba,
    TempC,
    RhPct,
    PressureKpa,
    WindMs,
    WindDeg,
    No2,
    So2,
    O3,
    Co,
}

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::Pm25,
        Metric::Pm10,
        Metric::Tsp,
        Metric::NoiseDba,
        Metric::TempC,
        Metric::RhPct,
        Metric::PressureKpa,
        Metric::WindMs,
        Metric::WindDeg,
        Metric::No2,
        Metric::So2,
        Metric::O3,
        Metric::Co,
    ];

    /// The gases of ambient air stations.
    pub const GASES: [Metric; 4] = [Metric::No2, Metric::So2, Metric::O3, Metric::Co];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Pm25 | Metric::Pm10 | Metric::Tsp => "µg/m³",
            Metric::No2 | Metric::So2 | Metric::O3 => "µg/m³",
            Metric::Co => "mg/m³",
            Metric::NoiseDba => "dB(A)",
            Metric::TempC => "°C",
            Metric::RhPct => "%",
            Metric::PressureKpa => "kPa",
            Metric::WindMs => "m/s",
            Metric::WindDeg => "°",
        }
    }

    /// Accepted input range (inclusive). Wide enough for any real instrument, narrow enough to
    /// reject garbage: laser PM sensors cap near 1,000 µg/m³ and beta-gauge TSP near 20 mg/m³.
    pub fn range(self) -> (f64, f64) {
        match self {
            Metric::Pm25 | Metric::Pm10 => (0.0, 10_000.0),
            Metric::Tsp => (0.0, 20_000.0),
            Metric::NoiseDba => (0.0, 150.0),
            Metric::TempC => (-60.0, 70.0),
            Metric::RhPct => (0.0, 100.0),
            Metric::PressureKpa => (50.0, 110.0),
            Metric::WindMs => (0.0, 75.0),
            Metric::WindDeg => (0.0, 360.0),
            // Gas analysers of air stations span a few mg/m³; ten times the top of HJ 633's
            // tables (or more) is a broken analyser, not air.
            Metric::No2 => (0.0, 10_000.0),
            Metric::So2 => (0.0, 20_000.0),
            Metric::O3 => (0.0, 10_000.0),
            Metric::Co => (0.0, 1_000.0),
        }
    }
}

fn unknown_metric(s: &str) -> String {
    format!("unknown metric `{s}`")
}

/// HJ 212 data flags. Only `N` counts as valid data.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Default,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
pub enum Flag {
    /// Normal.
    #[default]
    N,
    /// Instrument stopped.
    F,
    /// Maintenance.
    M,
    /// Manually set value.
    S,
    /// Instrument fault.
    D,
    /// Calibration.
    C,
    /// Over the measuring range.
    T,
    /// Communication fault.
    B,
}

impl Flag {
    pub fn is_valid(self) -> bool {
        self == Flag::N
    }
    pub fn letter(self) -> char {
        match self {
            Flag::N => 'N',
            Flag::F => 'F',
            Flag::M => 'M',
            Flag::S => 'S',
            Flag::D => 'D',
            Flag::C => 'C',
            Flag::T => 'T',
            Flag::B => 'B',
        }
    }
    pub fn from_letter(c: char) -> Option<Flag> {
        Some(match c {
            'N' => Flag::N,
            'F' => Flag::F,
            'M' => Flag::M,
            'S' => Flag::S,
            'D' => Flag::D,
            'C' => Flag::C,
            'T' => Flag::T,
            'B' => Flag::B,
            _ => return None,
        })
    }
}

/// Something that happened on a site, reported by its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts: EventTime,
    pub seq: u64,
    pub boot: u32,
    pub kind: EventKind,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    SprinklerOn,
    SprinklerOff,
    CoverOn,
    CoverOff,
    Reboot,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Retained device status; the last will carries only `{"state":"offline"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: StatusState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// Event time of the status when the device knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<EventTime>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StatusState {
    Online,
    Offline,
}

/// A command from the office to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    SetInterval {
        interval_s: u32,
    },
    Sprinkle {
        duration_s: u32,
    },
    Reboot,
    /// Stop the site's construction work (a stop-work order or notice): for `duration_s` of
    /// device time, or until `resume_work` when absent. `ref` names the office's order or
    /// notice (`order-12`, `notice-3`) for the site's display.
    StopWork {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<u32>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Work may go on again (the order's re-inspection passed).
    ResumeWork {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

/// Longest a `stop_work` with a duration may last: a week (longer is an open-ended stop).
pub const MAX_STOP_WORK_S: u32 = 7 * 86_400;

/// City heavy-pollution warning level, ordered from none to red.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_level
)]
pub enum Level {
    #[default]
    None,
    Blue,
    Yellow,
    Orange,
    Red,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::None,
        Level::Blue,
        Level::Yellow,
        Level::Orange,
        Level::Red,
    ];
    pub fn name(self) -> &'static str {
        self.into()
    }
}

fn unknown_level(s: &str) -> String {
    format!("unknown level `{s}` (none, blue, yellow, orange, red)")
}

/// Payload of `dust/v1/city/level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CityLevel {
    pub level: Level,
    /// Event time from which the level is in force (Unix ms on the wire).
    pub ts: EventTime,
}
