//! The scenario file format (TOML), as read: sites, defaults, background, levels, rules.

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    /// Simulated start, RFC 3339.
    pub(super) start: String,
    /// Default simulated duration (`72h`); none = run until stopped.
    #[serde(default)]
    pub(super) duration: Option<String>,
    /// IANA zone of the local clock (work hours, local days). Default Asia/Shanghai.
    #[serde(default = "default_tz")]
    pub(super) timezone: String,
    /// Averaging interval, seconds. Default 60.
    #[serde(default = "default_interval")]
    pub(super) interval_s: u32,
    /// Store-and-forward capacity as simulated time of intervals. Default `24h`.
    #[serde(default = "default_buffer")]
    pub(super) buffer: String,
    #[serde(default)]
    pub(super) background: BackgroundSpec,
    #[serde(default, rename = "level")]
    pub(super) levels: Vec<LevelSpec>,
    #[serde(default)]
    pub(super) rules: RulesSpec,
    #[serde(default)]
    pub(super) defaults: SiteDefaults,
    #[serde(default, rename = "site")]
    pub(super) sites: Vec<SiteSpec>,
    #[serde(default)]
    pub(super) steady: Option<SteadySpec>,
    /// Where a first demo run begins (offset from `start` or RFC 3339): just before the story
    /// starts to matter, so a newcomer sees it within a minute. Default: at `start`.
    #[serde(default)]
    pub(super) demo_begin: Option<String>,
}

pub(super) fn default_tz() -> String {
    "Asia/Shanghai".into()
}
pub(super) fn default_interval() -> u32 {
    60
}
pub(super) fn default_buffer() -> String {
    "24h".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackgroundSpec {
    /// `[[time, µg/m³], ...]`: the episode's PM2.5, interpolated linearly.
    #[serde(default)]
    pub(super) pm25: Vec<(String, f64)>,
    /// `[[time, m/s], ...]`: wind override; empty = calm in haze, breezy when clean.
    #[serde(default)]
    pub(super) wind: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LevelSpec {
    pub(super) at: String,
    pub(super) level: Level,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RulesSpec {
    pub(super) stop_earthwork_at: Level,
    pub(super) stop_all_at: Level,
    pub(super) min_sprinkling_runs: u32,
}

impl Default for RulesSpec {
    fn default() -> Self {
        // Zhengzhou measures by level (docs/domain.md, warning levels): earthwork stops at yellow, all work
        // at red; the local report asks for at least 2 sprinkling runs a day (section 1).
        RulesSpec {
            stop_earthwork_at: Level::Yellow,
            stop_all_at: Level::Red,
            min_sprinkling_runs: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SiteDefaults {
    pub(super) work: Vec<String>,
    pub(super) sprinkle: Vec<String>,
    pub(super) sprinkle_minutes: u32,
    pub(super) covered: bool,
    pub(super) auto_sprinkle_pm10: Option<f64>,
    pub(super) devices: u32,
    pub(super) night_work_hours: String,
    /// The monitors dry the sampled air (a heated inlet, as the reference stations do), so
    /// humid air does not swell the laser reading. Default true: a site judged against its
    /// reference station must see the air as the station does. False: raw laser readings, with
    /// the humidity bias.
    pub(super) heated_inlet: bool,
}

impl Default for SiteDefaults {
    fn default() -> Self {
        SiteDefaults {
            work: vec!["07:00-12:00".into(), "13:00-18:00".into()],
            sprinkle: vec!["08:00".into(), "14:00".into()],
            sprinkle_minutes: 30,
            covered: true,
            auto_sprinkle_pm10: None,
            devices: 1,
            night_work_hours: "23:00-04:00".into(),
            heated_inlet: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteSpec {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) street: String,
    #[serde(default)]
    pub(super) kind: SiteKind,
    #[serde(default)]
    pub(super) phase: Phase,
    #[serde(default)]
    pub(super) lat: Option<f64>,
    #[serde(default)]
    pub(super) lon: Option<f64>,
    #[serde(default)]
    pub(super) reference: Option<String>,
    #[serde(default)]
    pub(super) work: Option<Vec<String>>,
    #[serde(default)]
    pub(super) sprinkle: Option<Vec<String>>,
    #[serde(default)]
    pub(super) sprinkle_minutes: Option<u32>,
    #[serde(default)]
    pub(super) covered: Option<bool>,
    #[serde(default)]
    pub(super) auto_sprinkle_pm10: Option<f64>,
    #[serde(default)]
    pub(super) devices: Option<u32>,
    #[serde(default)]
    pub(super) heated_inlet: Option<bool>,
    /// Violation: keeps working by day while the level is at most this one.
    #[serde(default)]
    pub(super) ignore_restrictions_up_to: Option<Level>,
    /// Violation: works at night (`night_work_hours`) while the level is at least this one.
    #[serde(default)]
    pub(super) night_work_at: Option<Level>,
    #[serde(default)]
    pub(super) night_work_hours: Option<String>,
    #[serde(default, rename = "fault")]
    pub(super) faults: Vec<FaultSpec>,
    /// Devices of this site that speak HJ 212-2017 (minute data, CN 2051) on the `hj212` topic
    /// instead of JSON readings, as monitors bridged from a platform do.
    #[serde(default)]
    pub(super) hj212: Vec<String>,
    /// Devices of this site that speak HJ 212-2017 over TCP straight to a platform (the
    /// `--hj212-platform` address), as installed monitors do; no MQTT at all.
    #[serde(default)]
    pub(super) hj212_tcp: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SteadySpec {
    pub(super) devices: u32,
    /// Readings per second per device.
    pub(super) rate: f64,
    #[serde(default = "steady_phase")]
    pub(super) phase: Phase,
}

pub(super) fn steady_phase() -> Phase {
    Phase::Structure
}
