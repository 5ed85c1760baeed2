//! The rules engine fed in event time, for the rulebook tests: fixed timestamps, no sleeps, no
//! wall clock. A site `s1` (construction, earthwork) and its reference station `ref`.
#![allow(dead_code)] // each test binary uses a different part of this module

use chrono::{TimeZone, Utc};
use dustwatch::rules::{Alert, Change, DayStats, Engine, Output, Profile};
use dustwatch::store::Record;
use dustwatch_protocol::{
    CityLevel, Event, EventKind, EventTime, Level, Phase, Reading, SiteInfo, SiteKind,
};

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;

/// 2017-01-05 08:00 Asia/Shanghai (00:00 UTC), a working morning.
pub fn t0() -> i64 {
    Utc.with_ymd_and_hms(2017, 1, 5, 0, 0, 0)
        .single()
        .expect("valid date")
        .timestamp_millis()
}

/// Local midnight Asia/Shanghai at the end of t0's local day (16:00 UTC).
pub fn midnight() -> i64 {
    t0() + 16 * HOUR
}

pub fn site(id: &str, kind: SiteKind, phase: Phase) -> SiteInfo {
    SiteInfo {
        id: id.into(),
        name: id.into(),
        street: "Yingbin Road".into(),
        kind,
        phase,
        lat: None,
        lon: None,
        reference: Some("ref".into()),
    }
}

pub fn engine_with(profile: Profile) -> Engine {
    let mut e = Engine::new(profile, chrono_tz::Asia::Shanghai);
    e.set_sites([
        site("s1", SiteKind::Construction, Phase::Earthwork),
        site("ref", SiteKind::Reference, Phase::Idle),
    ]);
    e
}

pub fn hebei() -> Profile {
    Profile::parse(include_str!("../../rules/hebei-db13-2934.toml"), "hebei").expect("valid")
}

pub struct Sim {
    pub e: Engine,
    pub seq: u64,
    pub out: Vec<Output>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with(Profile::default_profile())
    }

    pub fn with(profile: Profile) -> Sim {
        Sim {
            e: engine_with(profile),
            seq: 0,
            out: Vec::new(),
        }
    }

    pub fn reading(&mut self, site: &str, ts: i64, pm10: f64, noise: f64) -> Record {
        self.seq += 1;
        Record::Reading {
            site: site.into(),
            device: "d1".into(),
            reading: Reading {
                ts: EventTime(ts),
                seq: self.seq,
                boot: 1,
                interval_s: 60,
                pm25: Some(pm10 * 0.5),
                pm10: Some(pm10),
                tsp: Some(pm10 * 1.2),
                noise_dba: Some(noise),
                ..Default::default()
            },
        }
    }

    pub fn feed(&mut self, records: &[Record]) {
        let out = self.e.process(records);
        self.out.extend(out);
    }

    /// One minute of site and reference readings, ending at `ts`.
    pub fn minute(&mut self, ts: i64, site_pm10: f64, noise: f64) {
        let a = self.reading("s1", ts, site_pm10, noise);
        let b = self.reading("ref", ts, 100.0, 45.0);
        self.feed(&[a, b]);
    }

    /// Minutes from `from` for `n` minutes with a per-minute signal.
    pub fn run(&mut self, from: i64, n: i64, f: impl Fn(i64) -> (f64, f64)) {
        for i in 0..n {
            let (pm10, noise) = f(i);
            self.minute(from + (i + 1) * MIN, pm10, noise);
        }
    }

    pub fn level(&mut self, ts: i64, level: Level) {
        self.feed(&[Record::CityLevel {
            level: CityLevel {
                level,
                ts: EventTime(ts),
            },
            source: "test".into(),
        }]);
    }

    pub fn event(&mut self, device: &str, ts: i64, kind: EventKind) {
        self.seq += 1;
        let seq = self.seq;
        self.feed(&[Record::Event {
            site: "s1".into(),
            device: device.into(),
            event: Event {
                ts: EventTime(ts),
                seq,
                boot: 1,
                kind,
            },
        }]);
    }

    /// A sprinkling run of `device` from `on` to `off`.
    pub fn sprinkle(&mut self, device: &str, on: i64, off: i64) {
        self.event(device, on, EventKind::SprinklerOn);
        self.event(device, off, EventKind::SprinklerOff);
    }

    /// State changes of `s1`'s alert `rule`, in order.
    pub fn changes(&self, rule: &str) -> Vec<Change> {
        self.transitions(rule).into_iter().map(|(c, _)| c).collect()
    }

    /// State changes of `s1`'s alert `rule` with the alert as it stood.
    pub fn transitions(&self, rule: &str) -> Vec<(Change, Alert)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Alert(t)
                    if t.alert.site == "s1"
                        && t.alert.rule == rule
                        && t.change.is_state_change() =>
                {
                    Some((t.change, t.alert.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The last figures emitted for `s1`'s closed days, by date.
    pub fn closed_days(&self) -> Vec<DayStats> {
        let mut days: Vec<DayStats> = Vec::new();
        for o in &self.out {
            if let Output::DayClosed(d) = o {
                if d.site == "s1" {
                    days.retain(|x| x.date != d.date);
                    days.push(d.clone());
                }
            }
        }
        days.sort_by_key(|d| d.date);
        days
    }
}

pub const QUIET: (f64, f64) = (110.0, 45.0);

/// Alert state changes, as (site, rule, change, opened, severity).
pub fn changes(out: &[Output]) -> Vec<(String, String, Change, i64, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Alert(t) if t.change.is_state_change() => Some((
                t.alert.site.clone(),
                t.alert.rule.clone(),
                t.change,
                t.alert.opened_ts.ms(),
                t.alert.severity.name().to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// Minute records of `s1` and its reference: a breach from minute 30 to 110, quiet after.
pub fn records(sim: &mut Sim, minutes: i64) -> Vec<Vec<Record>> {
    (1..=minutes)
        .map(|i| {
            let ts = t0() + i * MIN;
            // Never the same value twice in a row (that is a stuck sensor).
            let wobble = (i % 7) as f64;
            let pm10 = if (30..110).contains(&i) { 420.0 } else { 110.0 } + wobble;
            vec![
                sim.reading("s1", ts, pm10, 45.0 + wobble),
                sim.reading("ref", ts, 100.0 + (i % 5) as f64, 45.0),
            ]
        })
        .collect()
}

/// What one engine fed every batch decides, as [`changes`].
pub fn decided_by_one(all: &[Vec<Record>]) -> Vec<(String, String, Change, i64, String)> {
    let mut one = Sim::new().e;
    let mut out = Vec::new();
    for batch in all {
        out.extend(one.process(batch));
    }
    changes(&out)
}
