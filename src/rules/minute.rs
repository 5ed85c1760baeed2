//! Per-site minute buckets: the valid values of one minute, averaged across the site's devices.
//! Every windowed rule is built from these, so late readings simply land in their minute.

use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{Metric, Reading};

#[derive(Debug, Clone, Default)]
pub struct Minute {
    sum: [f64; Metric::ALL.len()],
    n: [u32; Metric::ALL.len()],
    /// Sum of 10^(L/10) for Leq (noise is averaged as energy, not as decibels).
    noise_energy: f64,
}

fn idx(m: Metric) -> usize {
    Metric::ALL
        .iter()
        .position(|x| *x == m)
        .expect("Metric::ALL lists every metric")
}

impl Minute {
    pub fn add(&mut self, r: &Reading) {
        for m in Metric::ALL {
            if let Some(v) = r.valid(m) {
                let i = idx(m);
                self.sum[i] += v;
                self.n[i] += 1;
                if m == Metric::NoiseDba {
                    self.noise_energy += 10f64.powf(v / 10.0);
                }
            }
        }
    }

    pub fn mean(&self, m: Metric) -> Option<f64> {
        let i = idx(m);
        (self.n[i] > 0).then(|| self.sum[i] / f64::from(self.n[i]))
    }

    /// Mean noise energy of the minute (for Leq over several minutes).
    pub fn noise_energy(&self) -> Option<f64> {
        let i = idx(Metric::NoiseDba);
        (self.n[i] > 0).then(|| self.noise_energy / f64::from(self.n[i]))
    }

    /// True when the minute holds any valid particulate value.
    pub fn has_pm(&self) -> bool {
        [Metric::Pm25, Metric::Pm10, Metric::Tsp]
            .into_iter()
            .any(|m| self.n[idx(m)] > 0)
    }
}

/// Minute start (ms) of a reading: its `ts` is the END of its interval.
pub fn minute_of(ts: i64) -> i64 {
    (ts - 1).div_euclid(MINUTE) * MINUTE
}
