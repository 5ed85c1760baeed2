//! Device faults a scenario switches on per device, and what each does to samples and messages.
//!
//! Every fault has a simulated window `[start, end)`. Sample faults (stuck, drift, spikes) act on
//! the 1 Hz samples inside the window; message faults (negative, nan, malformed, duplicate,
//! clock_skew) act on each reading whose interval starts inside the window; connection faults
//! (offline, out_of_order_backfill, power_loss) are transitions at `start` and `end`.

use dustwatch_protocol::time::{HOUR, MINUTE};
use serde::Deserialize;

/// A fault as written in a scenario (`[[site.fault]]`). Times are RFC 3339 or offsets from the
/// scenario start (`26h`, `1d2h30m`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub start: String,
    pub end: String,
    /// Device id within the site; default: every device of the site.
    #[serde(default)]
    pub device: Option<String>,
    /// `spikes`: multiplier of the true value (default 8).
    #[serde(default)]
    pub factor: Option<f64>,
    /// `spikes`: one 60 s spike per period (default `30m`).
    #[serde(default)]
    pub every: Option<String>,
    /// `drift`: gain added per hour, percent (default 5).
    #[serde(default)]
    pub pct_per_hour: Option<f64>,
    /// `clock_skew`: added to `ts`, e.g. `10m` or `-5m` (default `10m`).
    #[serde(default)]
    pub offset: Option<String>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FaultKind {
    /// Network lost: readings are buffered and sent in order after reconnecting.
    Offline,
    /// Network lost, then the buffer is sent newest first.
    OutOfOrderBackfill,
    /// Power cut: no readings for the window, then a reboot (`boot` + 1, `seq` restarts).
    PowerLoss,
    /// The PM values freeze at the first value of the window.
    Stuck,
    /// The PM gain grows linearly through the window.
    Drift,
    /// Short spikes of `factor` x the true PM value.
    Spikes,
    /// PM values sent negative.
    Negative,
    /// PM2.5 sent as a bare `NaN` token (as printf firmware does; not valid JSON).
    Nan,
    /// Truncated JSON.
    Malformed,
    /// Every reading published twice (same seq).
    Duplicate,
    /// The device clock is off by `offset`: `ts` shifted.
    ClockSkew,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A fault resolved to simulated milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub start: i64,
    pub end: i64,
    pub factor: f64,
    pub every_ms: i64,
    pub pct_per_hour: f64,
    pub offset_ms: i64,
}

/// Length of one spike.
pub const SPIKE_MS: i64 = MINUTE;

impl Fault {
    pub fn contains(&self, t: i64) -> bool {
        (self.start..self.end).contains(&t)
    }

    /// Spike windows `[s, s + SPIKE_MS)` inside the fault window.
    pub fn spikes(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let every = self.every_ms.max(SPIKE_MS);
        (0..)
            .map(move |k| self.start + k * every)
            .take_while(move |s| *s < self.end)
            .map(move |s| (s, (s + SPIKE_MS).min(self.end)))
    }

    fn in_spike(&self, t: i64) -> bool {
        let every = self.every_ms.max(SPIKE_MS);
        self.contains(t) && (t - self.start) % every < SPIKE_MS
    }
}

/// The sample-level faults of one device, applied to each PM sample.
#[derive(Debug, Clone, Default)]
pub struct SampleFaults {
    faults: Vec<Fault>,
    /// The frozen (pm25, pm10, tsp) of a stuck sensor, captured at its first stuck sample.
    frozen: Option<[f64; 3]>,
}

impl SampleFaults {
    pub fn new(all: &[Fault]) -> SampleFaults {
        SampleFaults {
            faults: all
                .iter()
                .filter(|f| {
                    matches!(
                        f.kind,
                        FaultKind::Stuck | FaultKind::Drift | FaultKind::Spikes
                    )
                })
                .copied()
                .collect(),
            frozen: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Apply to one sample of (pm25, pm10, tsp) taken at `t`.
    pub fn apply(&mut self, t: i64, pm: &mut [f64; 3]) {
        let mut stuck = false;
        for f in &self.faults {
            if !f.contains(t) {
                continue;
            }
            match f.kind {
                FaultKind::Stuck => stuck = true,
                FaultKind::Drift => {
                    let hours = (t - f.start) as f64 / (HOUR as f64);
                    let gain = 1.0 + f.pct_per_hour / 100.0 * hours;
                    pm.iter_mut().for_each(|v| *v *= gain);
                }
                FaultKind::Spikes if f.in_spike(t) => pm.iter_mut().for_each(|v| *v *= f.factor),
                _ => {}
            }
        }
        if stuck {
            *pm = *self.frozen.get_or_insert(*pm);
        } else {
            self.frozen = None;
        }
    }
}

/// Message-level faults that hit a reading whose interval starts at `interval_start`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MessageFaults {
    pub negative: bool,
    pub nan: bool,
    pub malformed: bool,
    pub duplicate: bool,
    pub skew_ms: i64,
}

impl MessageFaults {
    pub fn at(all: &[Fault], interval_start: i64) -> MessageFaults {
        let mut m = MessageFaults::default();
        for f in all.iter().filter(|f| f.contains(interval_start)) {
            match f.kind {
                FaultKind::Negative => m.negative = true,
                FaultKind::Nan => m.nan = true,
                FaultKind::Malformed => m.malformed = true,
                FaultKind::Duplicate => m.duplicate = true,
                FaultKind::ClockSkew => m.skew_ms += f.offset_ms,
                _ => {}
            }
        }
        m
    }
}

/// A connection or power change at a simulated instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    NetDown,
    NetUp { newest_first: bool },
    PowerOff,
    PowerOn,
}

/// The transitions of a device's faults, in time order.
pub fn transitions(all: &[Fault]) -> Vec<(i64, Transition)> {
    let mut out = Vec::new();
    for f in all {
        match f.kind {
            FaultKind::Offline => {
                out.push((f.start, Transition::NetDown));
                out.push((
                    f.end,
                    Transition::NetUp {
                        newest_first: false,
                    },
                ));
            }
            FaultKind::OutOfOrderBackfill => {
                out.push((f.start, Transition::NetDown));
                out.push((f.end, Transition::NetUp { newest_first: true }));
            }
            FaultKind::PowerLoss => {
                out.push((f.start, Transition::PowerOff));
                out.push((f.end, Transition::PowerOn));
            }
            _ => {}
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_are_the_scenario_words() {
        use strum::VariantArray;
        for &k in FaultKind::VARIANTS {
            let word = serde_json::Value::String(k.name().to_string());
            assert_eq!(serde_json::from_value::<FaultKind>(word).ok(), Some(k));
            assert_eq!(k.name().parse::<FaultKind>().ok(), Some(k));
        }
        assert_eq!(
            FaultKind::OutOfOrderBackfill.name(),
            "out_of_order_backfill"
        );
    }

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            kind,
            start: 1000,
            end: 200_000,
            factor: 8.0,
            every_ms: 90_000,
            pct_per_hour: 5.0,
            offset_ms: 0,
        }
    }

    #[test]
    fn stuck_freezes_then_releases() {
        let mut sf = SampleFaults::new(&[fault(FaultKind::Stuck)]);
        let mut a = [10.0, 20.0, 30.0];
        sf.apply(1000, &mut a);
        let mut b = [50.0, 60.0, 70.0];
        sf.apply(2000, &mut b);
        assert_eq!(b, [10.0, 20.0, 30.0]);
        let mut c = [50.0, 60.0, 70.0];
        sf.apply(300_000, &mut c);
        assert_eq!(c, [50.0, 60.0, 70.0]);
    }

    #[test]
    fn spikes_are_one_minute_every_period() {
        let f = fault(FaultKind::Spikes);
        let spikes: Vec<_> = f.spikes().collect();
        assert_eq!(
            spikes,
            vec![(1000, 61_000), (91_000, 151_000), (181_000, 200_000)]
        );
        assert!(f.in_spike(1000) && !f.in_spike(61_000) && f.in_spike(91_000));
    }
}
