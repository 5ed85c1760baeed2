//! A scenario resolved for one run: the rules sites follow, each site's plan, each device's.

use super::*;

/// How compliant sites respond to the warning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub stop_earthwork_at: Level,
    pub stop_all_at: Level,
    pub min_sprinkling_runs: u32,
}

/// One site's behaviour for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SitePlan {
    pub index: usize,
    pub info: SiteInfo,
    /// Day work hours, seconds of the local day.
    pub work: Vec<(u32, u32)>,
    /// Scheduled sprinkling starts, seconds of the local day.
    pub sprinkle: Vec<u32>,
    pub sprinkle_s: u32,
    pub covered: bool,
    pub auto_sprinkle_pm10: Option<f64>,
    /// The site's monitors dry the sampled air: no humidity bias.
    pub heated_inlet: bool,
    pub ignore_up_to: Option<Level>,
    pub night_work_at: Option<Level>,
    pub night_work_hours: (u32, u32),
}

impl SitePlan {
    /// Whether the site works at local second-of-day `sod` under `level`.
    pub fn working(&self, rules: &Rules, level: Level, sod: u32) -> bool {
        if self.info.kind != SiteKind::Construction || self.info.phase == Phase::Idle {
            return false;
        }
        let restricted = level >= rules.stop_all_at
            || (self.info.phase == Phase::Earthwork && level >= rules.stop_earthwork_at);
        let ignores = self.ignore_up_to.is_some_and(|l| level <= l);
        let day = self.work.iter().any(|r| in_range(*r, sod));
        if day && (!restricted || ignores) {
            return true;
        }
        self.night_work_at.is_some_and(|l| level >= l) && in_range(self.night_work_hours, sod)
    }

    /// Whether a truck passes the monitor in the simulated second `t_s` while working: a
    /// deterministic draw per site and minute, so every device of the site agrees.
    pub fn truck(&self, seed: u64, t_s: i64) -> bool {
        let minute = t_s.div_euclid(60);
        let key = (self.index as u64) << 40 ^ minute as u64;
        let p = crate::physics::truck_rate(self.info.phase);
        if crate::physics::unit(seed ^ 0x7275_636b, key) >= p {
            return false;
        }
        let offset = (crate::physics::unit(seed ^ 0x6f66_6673, key) * 15.0) as i64;
        let s = t_s.rem_euclid(60);
        (offset..offset + 45).contains(&s)
    }
}

/// One device's plan.
#[derive(Debug, Clone)]
pub struct DevicePlan {
    /// Position in the fleet (seeds the device's random stream).
    pub index: usize,
    pub site: Arc<SitePlan>,
    pub id: String,
    pub faults: Vec<Fault>,
    pub transport: Transport,
}

/// What a device speaks and how it reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// JSON readings, events and status over MQTT (the wire contract v1).
    #[default]
    Json,
    /// Readings as HJ 212 frames on the `hj212` topic; events and status stay JSON (`hj212`).
    Hj212Mqtt,
    /// HJ 212 frames over TCP to the platform, each asking for a 9014 reply; no MQTT, so no
    /// events, status or commands (`hj212_tcp`).
    Hj212Tcp,
}

/// The HJ 212 access password (PW) every simulated device sends.
pub const HJ212_PASSWORD: &str = "123456";

/// The HJ 212 MN of a simulated device: `{site}.{device}`, cut to the 64 characters the codec
/// allows. The simulator's frames and its registry's `[[device]]` tables both use this.
pub fn hj212_mn(site: &str, device: &str) -> String {
    format!("{site}.{device}").chars().take(64).collect()
}

/// A scenario resolved for one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub start_ms: i64,
    /// Where the simulated clock begins: the start, or a later point a run resumes from.
    pub begin_ms: i64,
    pub end_ms: Option<i64>,
    pub tz: Tz,
    pub interval_s: u32,
    /// Store-and-forward capacity per device, messages.
    pub buffer_capacity: usize,
    pub background: Background,
    /// Level changes `(from, level)` in time order; `none` before the first.
    pub levels: Vec<(i64, Level)>,
    pub rules: Rules,
    pub sites: Vec<Arc<SitePlan>>,
    pub devices: Vec<DevicePlan>,
    pub seed: u64,
}

impl Plan {
    /// The warning level in force at `t`.
    pub fn level_at(&self, t: i64) -> Level {
        let i = self.levels.partition_point(|(from, _)| *from <= t);
        if i == 0 {
            Level::None
        } else {
            self.levels[i - 1].1
        }
    }

    /// Offset of local time from UTC at `t`, seconds.
    pub fn utc_offset_s(&self, t: i64) -> i64 {
        match self.tz.timestamp_millis_opt(t).single() {
            Some(dt) => i64::from(dt.offset().fix().local_minus_utc()),
            None => 0,
        }
    }

    /// Local second of the day at `t` given the offset.
    pub fn second_of_day(t: i64, offset_s: i64) -> u32 {
        (t.div_euclid(1000) + offset_s).rem_euclid(86_400) as u32
    }
}
