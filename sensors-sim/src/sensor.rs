//! The laser PM sensor and the weather instruments of a monitor: what they report for a true value.
//!
//! Laser PM sensors (Plantower PMS5003 class): resolution 1 µg/m³, effective range 0-500 and up to
//! 1,000 µg/m³, about ±10 % above 100; raw readings overestimate at high humidity, about 40 % on
//! average and much more above ~80 % RH (docs/domain.md, simulator figures). Over the range the value is capped
//! and flagged `T` (HJ 212 data flag "over the measuring range", docs/domain.md, HJ 212).

use rand::Rng;

/// A laser particle sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaserPm {
    /// Smallest step of one raw sample, µg/m³.
    pub resolution: f64,
    /// Upper end of the range; larger true values read as the cap.
    pub cap: f64,
    /// Relative noise (one sigma) above 100 µg/m³.
    pub rel_noise: f64,
    /// Absolute noise (one sigma) at low concentrations, µg/m³.
    pub abs_noise: f64,
}

impl Default for LaserPm {
    fn default() -> Self {
        // ±10 % read as two sigma (docs/domain.md, simulator figures, PMS5003 class).
        LaserPm {
            resolution: 1.0,
            cap: 1000.0,
            rel_noise: 0.05,
            abs_noise: 3.0,
        }
    }
}

/// One raw sample: value and whether it hit the range cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub over_range: bool,
}

/// Overestimate of a laser reading at relative humidity `rh` (fraction, 0.4 = +40 %): none below
/// 70 %, about 40 % at 80 %, growing steeply above (docs/domain.md, simulator figures, "Humidity bias").
pub fn humidity_bias(rh: f64) -> f64 {
    if rh < 70.0 {
        0.0
    } else if rh < 80.0 {
        0.4 * (rh - 70.0) / 10.0
    } else {
        0.4 + 0.08 * (rh - 80.0)
    }
}

impl LaserPm {
    /// Measure a true mass concentration; `hygroscopic` scales the humidity bias (coarse dust
    /// swells less than fine haze particles: PM10 uses a smaller share, assumed 0.6).
    pub fn measure<R: Rng>(&self, truth: f64, rh: f64, hygroscopic: f64, rng: &mut R) -> Sample {
        let biased = truth * (1.0 + hygroscopic * humidity_bias(rh));
        let sigma = (self.rel_noise * biased).max(self.abs_noise);
        let noisy = (biased + sigma * gauss(rng)).max(0.0);
        let stepped = (noisy / self.resolution).round() * self.resolution;
        if stepped >= self.cap {
            Sample {
                value: self.cap,
                over_range: true,
            }
        } else {
            Sample {
                value: stepped,
                over_range: false,
            }
        }
    }
}

/// A standard normal number (Box-Muller); rand 0.8 without rand_distr has none built in.
pub fn gauss<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Round to `step` (0.1 for µg/m³ means, 0.01 for kPa).
pub fn round_to(v: f64, step: f64) -> f64 {
    if step < 1.0 {
        // Divide by the integer inverse so 0.1 steps print as 24.5, not 24.500000000000004.
        let inv = (1.0 / step).round();
        (v * inv).round() / inv
    } else {
        (v / step).round() * step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn caps_and_flags_over_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = LaserPm::default().measure(5000.0, 50.0, 1.0, &mut rng);
        assert_eq!(s.value, 1000.0);
        assert!(s.over_range);
    }

    #[test]
    fn humid_air_reads_high() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sensor = LaserPm::default();
        let mean = |rh: f64, rng: &mut ChaCha8Rng| {
            (0..2000)
                .map(|_| sensor.measure(200.0, rh, 1.0, rng).value)
                .sum::<f64>()
                / 2000.0
        };
        let dry = mean(50.0, &mut rng);
        let humid = mean(85.0, &mut rng);
        assert!((190.0..210.0).contains(&dry), "dry mean {dry}");
        assert!(humid > 1.5 * dry, "humid {humid} vs dry {dry}");
    }

    #[test]
    fn samples_have_the_resolution() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = LaserPm::default().measure(42.3, 40.0, 1.0, &mut rng);
        assert_eq!(s.value.fract(), 0.0);
    }
}
