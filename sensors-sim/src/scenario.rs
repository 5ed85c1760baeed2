//! Scenarios: TOML files describing sites, their behaviour, faults, the haze episode and the city
//! warning-level timeline. Shipped scenarios are embedded in the binary, so a name works from any
//! directory; anything else is read as a path.

use crate::clock::{parse_duration, TimeError};
use crate::faults::{Fault, FaultKind, FaultSpec};
use crate::physics::{Background, Series};
use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;
use dustwatch_protocol::topic::{check_site_id, is_valid_id};
use dustwatch_protocol::{DeviceInfo, Level, Phase, Registry, SiteInfo, SiteKind, TimeOfDay};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

mod file;
mod plan;
use dustwatch_protocol::time::MINUTE;
use file::*;
pub use plan::*;

/// The scenarios shipped in `sensors-sim/scenarios/`.
pub const SHIPPED: [(&str, &str); 3] = [
    (
        "huiji-red-alert",
        include_str!("../scenarios/huiji-red-alert.toml"),
    ),
    ("steady", include_str!("../scenarios/steady.toml")),
    ("faults", include_str!("../scenarios/faults.toml")),
];

/// The default scenario.
pub const DEFAULT_SCENARIO: &str = "huiji-red-alert";

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("no shipped scenario `{name}` (shipped: huiji-red-alert, steady, faults) and no such file: {source}")]
    NotFound {
        name: String,
        source: std::io::Error,
    },
    #[error("scenario {origin}: {source}")]
    Toml {
        origin: String,
        source: toml::de::Error,
    },
    #[error("scenario {origin}: {what}")]
    Invalid { origin: String, what: String },
}

// ---- Loaded scenario ---------------------------------------------------------------------------

/// A validated scenario, ready to plan a run.
#[derive(Debug, Clone)]
pub struct Scenario {
    origin: String,
    file: ScenarioFile,
    start_ms: i64,
    tz: Tz,
}

/// Run-time overrides of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub start_ms: Option<i64>,
    /// Begin the simulated clock here instead of at the start; the scenario's story (levels,
    /// background, faults) stays anchored to the start.
    pub resume_ms: Option<i64>,
    pub duration: Option<Duration>,
    pub devices: Option<u32>,
    /// Readings per second per device (sets the interval to `1 / rate`, at least 1 s).
    pub rate: Option<f64>,
    pub seed: u64,
}

impl Scenario {
    /// A shipped scenario by name, else a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::parse(text, &format!("`{name}` (shipped)"));
        }
        let text =
            std::fs::read_to_string(name_or_path).map_err(|source| ScenarioError::NotFound {
                name: name_or_path.to_string(),
                source,
            })?;
        Scenario::parse(&text, name_or_path)
    }

    /// Parse and validate scenario TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|source| ScenarioError::Toml {
            origin: origin.to_string(),
            source,
        })?;
        let invalid = |what: String| ScenarioError::Invalid {
            origin: origin.to_string(),
            what,
        };
        let start_ms = DateTime::parse_from_rfc3339(&file.start)
            .map_err(|e| invalid(format!("start `{}` is not RFC 3339: {e}", file.start)))?
            .timestamp_millis();
        let tz: Tz = file
            .timezone
            .parse()
            .map_err(|_| invalid(format!("unknown time zone `{}`", file.timezone)))?;
        let s = Scenario {
            origin: origin.to_string(),
            file,
            start_ms,
            tz,
        };
        if let Some(b) = &s.file.demo_begin {
            resolve_time(b, start_ms).map_err(|e| invalid(format!("demo_begin: {e}")))?;
        }
        // Plan once with the scenario's own settings so every error shows at load time.
        s.plan(&Overrides::default()).map_err(invalid)?;
        Ok(s)
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn description(&self) -> &str {
        &self.file.description
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Where a first demo run begins, Unix ms (the scenario's `demo_begin`, else its start).
    pub fn demo_begin_ms(&self) -> i64 {
        self.file
            .demo_begin
            .as_deref()
            .and_then(|b| resolve_time(b, self.start_ms).ok())
            .unwrap_or(self.start_ms)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The scenario's own duration, if it has one.
    pub fn duration(&self) -> Option<Duration> {
        self.file
            .duration
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
    }

    /// The sites, for the aggregator's registry (default devices count and rate).
    pub fn registry(&self) -> Registry {
        self.registry_with(&Overrides::default())
    }

    /// The sites as they will be simulated with these overrides (`steady` depends on `devices`).
    /// HJ 212 devices come with a `[[device]]` table (MN and PW as they send them), which the
    /// aggregator's TCP listener needs to accept them.
    pub fn registry_with(&self, o: &Overrides) -> Registry {
        let (sites, devices) = match self.plan(o) {
            Ok(p) => (
                p.sites.iter().map(|s| s.info.clone()).collect(),
                p.devices
                    .iter()
                    .filter(|d| d.transport != Transport::Json)
                    .map(|d| DeviceInfo {
                        site: d.site.info.id.clone(),
                        id: d.id.clone(),
                        mn: Some(hj212_mn(&d.site.info.id, &d.id)),
                        password: Some(HJ212_PASSWORD.to_string()),
                        unit: Default::default(),
                        utc_offset_min: dustwatch_protocol::hj212::CHINA_UTC_OFFSET_MIN,
                        realtime_interval_s: p.interval_s,
                    })
                    .collect(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        };
        Registry {
            strict: false,
            sites,
            devices,
        }
    }

    /// Resolve the scenario for one run.
    pub fn plan(&self, o: &Overrides) -> Result<Plan, String> {
        let f = &self.file;
        let start = o.start_ms.unwrap_or(self.start_ms);
        let at = |s: &str| resolve_time(s, start);
        let duration = match o.duration {
            Some(d) => Some(d),
            None => match &f.duration {
                Some(d) => Some(parse_duration(d).map_err(|e| e.to_string())?),
                None => None,
            },
        };
        let end = duration.map(|d| start + d.as_millis() as i64);
        let mut interval_s = f.interval_s;
        let mut steady = f.steady.clone();
        if let Some(rate) = o.rate.or(steady.as_ref().map(|s| s.rate)) {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!(
                    "rate {rate} must be a positive number of readings per second"
                ));
            }
            interval_s = (1.0 / rate).round().max(1.0) as u32;
        }
        if interval_s == 0 || interval_s > 3600 {
            return Err(format!("interval_s {interval_s} outside 1..=3600"));
        }
        if let (Some(s), Some(n)) = (steady.as_mut(), o.devices) {
            s.devices = n;
        }
        let buffer = parse_duration(&f.buffer).map_err(|e| e.to_string())?;
        let buffer_capacity = (buffer.as_secs() / u64::from(interval_s)).max(1) as usize;

        let series = |pts: &[(String, f64)]| -> Result<Series, String> {
            let mut v = pts
                .iter()
                .map(|(t, x)| Ok((at(t)?, *x)))
                .collect::<Result<Vec<_>, String>>()?;
            v.sort_by_key(|p| p.0);
            Ok(Series(v))
        };
        let background = Background {
            pm25: series(&f.background.pm25)?,
            wind: series(&f.background.wind)?,
            seed: o.seed,
        };
        let mut levels = f
            .levels
            .iter()
            .map(|l| Ok((at(&l.at)?, l.level)))
            .collect::<Result<Vec<_>, String>>()?;
        levels.sort_by_key(|l| l.0);
        let rules = Rules {
            stop_earthwork_at: f.rules.stop_earthwork_at,
            stop_all_at: f.rules.stop_all_at,
            min_sprinkling_runs: f.rules.min_sprinkling_runs,
        };

        let mut specs = f.sites.clone();
        if let Some(s) = &steady {
            for i in 0..s.devices {
                specs.push(SiteSpec {
                    id: format!("steady-{i:05}"),
                    name: format!("Steady site {i}"),
                    street: "steady".into(),
                    kind: SiteKind::Construction,
                    phase: s.phase,
                    lat: None,
                    lon: None,
                    reference: None,
                    work: None,
                    sprinkle: None,
                    sprinkle_minutes: None,
                    covered: None,
                    auto_sprinkle_pm10: None,
                    devices: Some(1),
                    heated_inlet: None,
                    ignore_restrictions_up_to: None,
                    night_work_at: None,
                    night_work_hours: None,
                    faults: Vec::new(),
                    hj212: Vec::new(),
                    hj212_tcp: Vec::new(),
                });
            }
        }
        if specs.is_empty() {
            return Err("no sites: add [[site]] tables or a [steady] table".into());
        }

        let d = &f.defaults;
        let mut sites = Vec::with_capacity(specs.len());
        let mut devices = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, s) in specs.iter().enumerate() {
            check_site_id(&s.id).map_err(|e| format!("site `{}`: {e}", s.id))?;
            if !seen.insert(s.id.clone()) {
                return Err(format!("site `{}` is listed twice", s.id));
            }
            if let Some(r) = &s.reference {
                if !specs
                    .iter()
                    .any(|x| &x.id == r && x.kind == SiteKind::Reference)
                {
                    return Err(format!(
                        "site `{}`: reference `{r}` is not a reference site",
                        s.id
                    ));
                }
            }
            let ranges = |v: &[String]| {
                v.iter()
                    .map(|r| parse_range(r))
                    .collect::<Result<Vec<_>, _>>()
            };
            let site = Arc::new(SitePlan {
                index,
                info: SiteInfo {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    street: s.street.clone(),
                    kind: s.kind,
                    phase: s.phase,
                    lat: s.lat,
                    lon: s.lon,
                    reference: s.reference.clone(),
                },
                work: ranges(s.work.as_ref().unwrap_or(&d.work))?,
                sprinkle: s
                    .sprinkle
                    .as_ref()
                    .unwrap_or(&d.sprinkle)
                    .iter()
                    .map(|t| parse_time_of_day(t))
                    .collect::<Result<Vec<_>, _>>()?,
                sprinkle_s: s.sprinkle_minutes.unwrap_or(d.sprinkle_minutes) * 60,
                covered: s.covered.unwrap_or(d.covered),
                auto_sprinkle_pm10: s.auto_sprinkle_pm10.or(d.auto_sprinkle_pm10),
                heated_inlet: s.heated_inlet.unwrap_or(d.heated_inlet),
                ignore_up_to: s.ignore_restrictions_up_to,
                night_work_at: s.night_work_at,
                night_work_hours: parse_range(
                    s.night_work_hours.as_ref().unwrap_or(&d.night_work_hours),
                )?,
            });
            let n = s.devices.unwrap_or(d.devices).max(1);
            let ids: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
            if let Some(dev) = s.hj212.iter().find(|d| !ids.contains(d)) {
                return Err(format!(
                    "site `{}`: hj212 names unknown device `{dev}`",
                    s.id
                ));
            }
            if let Some(dev) = s.hj212_tcp.iter().find(|d| !ids.contains(d)) {
                return Err(format!(
                    "site `{}`: hj212_tcp names unknown device `{dev}`",
                    s.id
                ));
            }
            if let Some(dev) = s.hj212_tcp.iter().find(|d| s.hj212.contains(d)) {
                return Err(format!(
                    "site `{}`: device `{dev}` is in both hj212 (over MQTT) and hj212_tcp; pick one",
                    s.id
                ));
            }
            for fs in &s.faults {
                if let Some(dev) = &fs.device {
                    if !ids.contains(dev) || !is_valid_id(dev) {
                        return Err(format!(
                            "site `{}`: fault targets unknown device `{dev}`",
                            s.id
                        ));
                    }
                }
            }
            for id in ids {
                let faults = s
                    .faults
                    .iter()
                    .filter(|fs| fs.device.as_ref().is_none_or(|d| *d == id))
                    .map(|fs| resolve_fault(fs, start))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("site `{}`: {e}", s.id))?;
                let transport = if s.hj212_tcp.contains(&id) {
                    Transport::Hj212Tcp
                } else if s.hj212.contains(&id) {
                    Transport::Hj212Mqtt
                } else {
                    Transport::Json
                };
                devices.push(DevicePlan {
                    index: devices.len(),
                    site: site.clone(),
                    transport,
                    id,
                    faults,
                });
            }
            sites.push(site);
        }
        let begin = o
            .resume_ms
            .map_or(start, |r| r.clamp(start, end.unwrap_or(i64::MAX)));
        Ok(Plan {
            name: f.name.clone(),
            start_ms: start,
            begin_ms: begin,
            end_ms: end,
            tz: self.tz,
            interval_s,
            buffer_capacity,
            background,
            levels,
            rules,
            sites,
            devices,
            seed: o.seed,
        })
    }

    /// Where the scenario came from (name or path), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

fn resolve_fault(fs: &FaultSpec, start: i64) -> Result<Fault, String> {
    let s = resolve_time(&fs.start, start)?;
    let e = resolve_time(&fs.end, start)?;
    if e <= s {
        return Err(format!("fault {} ends before it starts", fs.kind.name()));
    }
    let every_ms = match &fs.every {
        Some(x) => parse_duration(x).map_err(|e| e.to_string())?.as_millis() as i64,
        None => 30 * MINUTE,
    };
    let offset_ms = match &fs.offset {
        Some(x) => parse_signed_duration(x)?,
        None if fs.kind == FaultKind::ClockSkew => 10 * MINUTE,
        None => 0,
    };
    Ok(Fault {
        kind: fs.kind,
        start: s,
        end: e,
        factor: fs.factor.unwrap_or(8.0),
        every_ms,
        pct_per_hour: fs.pct_per_hour.unwrap_or(5.0),
        offset_ms,
    })
}

fn parse_signed_duration(s: &str) -> Result<i64, String> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    Ok(sign
        * parse_duration(rest)
            .map_err(|e: TimeError| e.to_string())?
            .as_millis() as i64)
}

/// RFC 3339, or an offset from `start` such as `26h` or `1d2h`.
pub fn resolve_time(s: &str, start: i64) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    parse_duration(s)
        .map(|d| start + d.as_millis() as i64)
        .map_err(|_| format!("time `{s}` is neither RFC 3339 nor an offset like `26h`"))
}

/// `HH:MM` to seconds of the day.
fn parse_time_of_day(s: &str) -> Result<u32, String> {
    TimeOfDay::parse(s)
        .map(TimeOfDay::seconds)
        .map_err(|e| e.to_string())
}

/// `HH:MM-HH:MM` to seconds of the day; an end before the start wraps past midnight.
fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("time range `{s}` is not HH:MM-HH:MM"))?;
    Ok((parse_time_of_day(a)?, parse_time_of_day(b)?))
}

fn in_range((a, b): (u32, u32), sod: u32) -> bool {
    if a <= b {
        (a..b).contains(&sod)
    } else {
        sod >= a || sod < b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_load() {
        for (name, _) in SHIPPED {
            let s = Scenario::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.registry().sites.is_empty(), "{name}");
        }
    }

    #[test]
    fn huiji_has_forty_sites_and_reference_stations() {
        let reg = Scenario::load("huiji-red-alert").expect("loads").registry();
        let refs = reg
            .sites
            .iter()
            .filter(|s| s.kind == SiteKind::Reference)
            .count();
        assert_eq!(reg.sites.len() - refs, 40);
        assert!((2..=3).contains(&refs));
        assert!(reg
            .sites
            .iter()
            .filter(|s| s.kind != SiteKind::Reference)
            .all(|s| s.reference.is_some()));
        let streets: std::collections::HashSet<_> =
            reg.sites.iter().map(|s| s.street.as_str()).collect();
        assert!(streets.len() >= 8);
    }

    #[test]
    fn steady_follows_devices_and_rate() {
        let s = Scenario::load("steady").expect("loads");
        let p = s
            .plan(&Overrides {
                devices: Some(7),
                rate: Some(1.0),
                ..Default::default()
            })
            .expect("plans");
        assert_eq!(p.devices.len(), 7);
        assert_eq!(p.interval_s, 1);
    }

    #[test]
    fn unknown_fields_and_bad_times_are_errors() {
        let bad = "name='x'\nstart='2017-01-02T00:00:00+08:00'\nfoo=1\n";
        assert!(matches!(
            Scenario::parse(bad, "t"),
            Err(ScenarioError::Toml { .. })
        ));
        let bad = "name='x'\nstart='yesterday'\n[[site]]\nid='a'\nname='a'\nstreet='s'\n";
        assert!(matches!(
            Scenario::parse(bad, "t"),
            Err(ScenarioError::Invalid { .. })
        ));
        assert!(matches!(
            Scenario::load("/nonexistent/x.toml"),
            Err(ScenarioError::NotFound { .. })
        ));
    }

    #[test]
    fn hj212_devices_get_registry_entries_matching_their_frames() {
        let text = r#"
name = "t"
start = "2017-01-02T08:00:00+08:00"
[[site]]
id = "a"
name = "A"
street = "s"
devices = 3
hj212 = ["m1"]
hj212_tcp = ["m2"]
"#;
        let s = Scenario::parse(text, "t").expect("parses");
        let plan = s.plan(&Overrides::default()).expect("plans");
        let transports: Vec<_> = plan.devices.iter().map(|d| d.transport).collect();
        assert_eq!(
            transports,
            [Transport::Hj212Mqtt, Transport::Hj212Tcp, Transport::Json]
        );
        let reg = s.registry();
        let ids: Vec<_> = reg.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2"]);
        assert_eq!(reg.devices[1].mn.as_deref(), Some("a.m2"));
        assert_eq!(reg.devices[1].password.as_deref(), Some(HJ212_PASSWORD));
        let both = text.replace(r#"hj212_tcp = ["m2"]"#, r#"hj212_tcp = ["m1"]"#);
        let err = Scenario::parse(&both, "t").expect_err("a device in both lists");
        assert!(err.to_string().contains("pick one"), "{err}");
        let unknown = text.replace(r#"hj212_tcp = ["m2"]"#, r#"hj212_tcp = ["m9"]"#);
        assert!(Scenario::parse(&unknown, "t").is_err());
    }

    #[test]
    fn night_ranges_wrap_midnight() {
        let r = parse_range("23:00-04:00").expect("parses");
        assert!(in_range(r, 23 * 3600) && in_range(r, 3600) && !in_range(r, 12 * 3600));
    }
}
