//! What a monitor measures: the 1 Hz samples of one interval (air, site, sensor, sample faults)
//! averaged into a reading, with the sprinkler events of the interval. No network here, so the
//! ground truth can replay a device's readings exactly as the device produced them.

use crate::faults::SampleFaults;
use crate::physics::{
    ambient_noise, energy_sum, site_increment, sprinkle_reduction, Activity, Run, SiteSource,
};
use crate::scenario::{DevicePlan, Plan};
use crate::sensor::{gauss, round_to, LaserPm};
use dustwatch_protocol::time::{HOUR, SECOND};
use dustwatch_protocol::{EventKind, EventTime, Flag, Level, Reading, SiteKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One sampled interval.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// The reading as the monitor computed it (before message faults; `seq`/`boot` unset).
    pub reading: Reading,
    /// Sprinkler events inside the interval, in order.
    pub events: Vec<(i64, EventKind)>,
    /// What perfect PM2.5, PM10 and TSP sensors would have averaged (µg/m³): the true air at
    /// the monitor, without humidity bias, noise, range cap or sample faults.
    pub perfect: [f64; 3],
}

/// The measuring half of a device: its random stream, instruments and sprinkler runs.
pub struct Sampler {
    rng: ChaCha8Rng,
    sensor: LaserPm,
    hygroscopic: f64,
    station_gain: f64,
    sample_faults: SampleFaults,
    /// Sprinkling runs under way or fading (scheduled, automatic and commanded).
    pub(crate) runs: Vec<Run>,
    /// Work stopped by the office's `stop_work` (simulated ms `[start, end)`; `end` is
    /// `i64::MAX` until a `resume_work`).
    pub(crate) stopped: Option<Run>,
    last_auto: i64,
}

impl Sampler {
    pub fn new(plan: &Plan, device: &DevicePlan) -> Sampler {
        let site = &device.site;
        let seed = plan.seed ^ crate::physics::mix(device.index as u64 + 1);
        let reference = site.info.kind == SiteKind::Reference;
        // Reference stations are heated-inlet instruments: no humidity bias, less noise.
        let sensor = if reference {
            LaserPm {
                rel_noise: 0.03,
                abs_noise: 2.0,
                ..LaserPm::default()
            }
        } else {
            LaserPm::default()
        };
        let station_gain =
            1.0 + 0.1 * (crate::physics::unit(plan.seed ^ 0x5354, site.index as u64) - 0.5);
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            sensor,
            hygroscopic: if reference || site.heated_inlet {
                0.0
            } else {
                1.0
            },
            station_gain,
            sample_faults: SampleFaults::new(&device.faults),
            runs: Vec::new(),
            stopped: None,
            last_auto: i64::MIN / 2,
        }
    }

    /// Sample the `len_s` seconds ending at `end` at 1 Hz.
    pub fn interval(&mut self, plan: &Plan, device: &DevicePlan, end: i64, len_s: u32) -> Sampled {
        let site = &device.site;
        let len = i64::from(len_s);
        let start = end - len * SECOND;
        let offset_s = plan.utc_offset_s(start);
        let src = SiteSource {
            kind: site.info.kind,
            phase: site.info.phase,
            covered: site.covered,
        };
        let mut events = Vec::new();
        let mut sums = [0.0f64; 8];
        let mut perfect = [0.0f64; 3];
        let mut over = [false; 3];
        let mut noise_energy = 0.0;
        let mut wind_deg = 0.0;
        let mut level_idx = plan.levels.partition_point(|(from, _)| *from <= start);
        for k in 0..len {
            let t = start + k * SECOND;
            while level_idx < plan.levels.len() && plan.levels[level_idx].0 <= t {
                level_idx += 1;
            }
            let level = if level_idx == 0 {
                Level::None
            } else {
                plan.levels[level_idx - 1].1
            };
            let sod = Plan::second_of_day(t, offset_s);
            let hour = f64::from(sod) / 3600.0;
            if site.sprinkle.contains(&sod) && site.info.kind != SiteKind::Reference {
                self.runs.push(Run {
                    start: t,
                    end: t + i64::from(site.sprinkle_s) * SECOND,
                });
            }
            for r in &self.runs {
                if r.start == t {
                    events.push((t, EventKind::SprinklerOn));
                }
                if r.end == t {
                    events.push((t, EventKind::SprinklerOff));
                }
            }
            let w = plan.background.at(t, hour);
            let stopped = self.stopped.is_some_and(|s| s.start <= t && t < s.end);
            let working = !stopped && site.working(&plan.rules, level, sod);
            let act = Activity {
                working,
                truck: working && site.truck(plan.seed, t / SECOND),
            };
            let reduction = if self.runs.is_empty() {
                0.0
            } else {
                sprinkle_reduction(&self.runs, t, &w)
            };
            let inc = site_increment(src, act, &w, hour, level, reduction);
            let pm = [
                (w.pm25 * self.station_gain + inc.pm25),
                (w.pm10 * self.station_gain + inc.pm10),
                // TSP about 1.1-1.5 x PM10 (docs/domain.md, simulator figures, assumed 1.2 for the background).
                (w.pm10 * 1.2 * self.station_gain + inc.tsp),
            ];
            let hygro = [
                self.hygroscopic,
                0.6 * self.hygroscopic,
                0.4 * self.hygroscopic,
            ];
            let mut measured = [0.0; 3];
            for m in 0..3 {
                perfect[m] += pm[m];
                // TSP is derived by the monitor from the same optics; give it a wider cap.
                let sensor = if m == 2 {
                    LaserPm {
                        cap: 2.0 * self.sensor.cap,
                        ..self.sensor
                    }
                } else {
                    self.sensor
                };
                let s = sensor.measure(pm[m], w.rh_pct, hygro[m], &mut self.rng);
                measured[m] = s.value;
                over[m] |= s.over_range;
            }
            // Sensor faults act on what the sensor outputs (a stuck sensor repeats its output).
            if !self.sample_faults.is_empty() {
                self.sample_faults.apply(t, &mut measured);
            }
            for m in 0..3 {
                sums[m] += measured[m];
            }
            let level_db = energy_sum(
                ambient_noise(site.info.kind, hour) + 1.5 * gauss(&mut self.rng),
                inc.noise_dba,
            );
            noise_energy += 10f64.powf(level_db / 10.0);
            sums[3] += w.temp_c + 0.1 * gauss(&mut self.rng);
            sums[4] += (w.rh_pct + 0.5 * gauss(&mut self.rng)).clamp(0.0, 100.0);
            sums[5] += w.pressure_kpa + 0.01 * gauss(&mut self.rng);
            sums[6] += (w.wind_ms + 0.2 * gauss(&mut self.rng)).max(0.0);
            wind_deg = w.wind_deg;
        }
        // Forget runs whose effect has faded (6 h after they ended).
        self.runs.retain(|r| r.end + 6 * HOUR > end);
        let n = len as f64;
        let mut r = Reading {
            ts: EventTime(end),
            seq: 0,
            boot: 0,
            interval_s: len_s,
            pm25: Some(round_to(sums[0] / n, 0.1)),
            pm10: Some(round_to(sums[1] / n, 0.1)),
            tsp: Some(round_to(sums[2] / n, 0.1)),
            // Reference stations measure air, not noise.
            noise_dba: (site.info.kind != SiteKind::Reference)
                .then(|| round_to(10.0 * (noise_energy / n).log10(), 0.1)),
            temp_c: Some(round_to(sums[3] / n, 0.1)),
            rh_pct: Some(round_to(sums[4] / n, 0.1)),
            pressure_kpa: Some(round_to(sums[5] / n, 0.01)),
            wind_ms: Some(round_to(sums[6] / n, 0.1)),
            wind_deg: Some(wind_deg.round()),
            flags: Default::default(),
            ..Reading::default()
        };
        for (m, name) in ["pm25", "pm10", "tsp"].iter().enumerate() {
            if over[m] {
                r.flags.insert((*name).to_string(), Flag::T);
            }
        }

        // Fog cannons linked to the monitor start on a PM10 threshold.
        if let Some(limit) = site.auto_sprinkle_pm10 {
            let active = self.runs.iter().any(|x| x.start <= end && end < x.end);
            if r.pm10.unwrap_or(0.0) > limit && !active && end - self.last_auto > HOUR {
                self.last_auto = end;
                self.runs.push(Run {
                    start: end,
                    end: end + i64::from(site.sprinkle_s) * SECOND,
                });
            }
        }
        Sampled {
            reading: r,
            events,
            perfect: perfect.map(|s| s / n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn a_stopped_site_makes_no_work_noise_or_dust_until_resumed() {
        let plan = Scenario::load("huiji-red-alert")
            .expect("shipped scenario")
            .plan(&Default::default())
            .expect("plan");
        let dev = plan
            .devices
            .iter()
            .find(|d| d.site.info.kind == SiteKind::Construction)
            .expect("a construction site");
        // 10:00 local on the first day: inside the working hours, before any warning level.
        let end = plan.start_ms + 10 * 3_600_000;
        let working = Sampler::new(&plan, dev).interval(&plan, dev, end, 60);
        let mut s = Sampler::new(&plan, dev);
        s.stopped = Some(Run {
            start: end - 3_600_000,
            end: i64::MAX,
        });
        let stopped = s.interval(&plan, dev, end, 60);
        assert!(
            stopped.perfect[1] < working.perfect[1],
            "PM10 {} stopped vs {} working",
            stopped.perfect[1],
            working.perfect[1]
        );
        let noise = |x: &Sampled| x.reading.noise_dba.expect("noise measured");
        assert!(noise(&stopped) < noise(&working));
        // Resumed before the interval: the same as never stopped.
        let mut r = Sampler::new(&plan, dev);
        r.stopped = Some(Run {
            start: end - 3_600_000,
            end: end - 120_000,
        });
        assert_eq!(r.interval(&plan, dev, end, 60).perfect, working.perfect);
    }
}
