//! What the air and the site really do, before any sensor looks at it.
//!
//! Sources (all in docs/domain.md; figures marked *(secondary)* there are settings, not law):
//! - Zhengzhou means and haze peaks, PM2.5/PM10 ratio about 0.55, the diurnal double peak with a low
//!   near 04:00, PM10 lowest at 2-3 m/s wind and rising above 4 m/s, winter haze weather (low wind,
//!   high humidity, inversion): docs/domain.md, simulator figures.
//! - Site increment mostly coarse (PM2.5 share 0.2-0.3, TSP about 1.1-1.5 x PM10), construction
//!   adding about 31 µg/m³ PM10 to city means (Beijing study), water spraying (> 50 % reduction within
//!   20 min, fading over 1-3 h, faster when hot, dry, windy): docs/domain.md, simulator figures.
//! - Noise day/night limits 70/55 dB(A), night = 22:00-06:00: GB 12523-2011, docs/domain.md, limits.
//! - Work stops by warning level (earthwork first; all work at red), muck trucks off the roads at
//!   orange: docs/domain.md, warning levels.
//!
//! Everything here is a pure function of time, site parameters and a hash of the run seed, so every
//! device of a run sees the same city background without sharing state.

use dustwatch_protocol::{Level, Phase, SiteKind};

/// City-wide weather and background air at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weather {
    pub pm25: f64,
    pub pm10: f64,
    pub wind_ms: f64,
    pub wind_deg: f64,
    pub temp_c: f64,
    pub rh_pct: f64,
    pub pressure_kpa: f64,
}

/// A piecewise-linear series over simulated time (ms), held flat outside its points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series(pub Vec<(i64, f64)>);

impl Series {
    pub fn at(&self, t: i64) -> Option<f64> {
        let pts = &self.0;
        let first = pts.first()?;
        if t <= first.0 {
            return Some(first.1);
        }
        let i = pts.partition_point(|p| p.0 <= t);
        if i >= pts.len() {
            return pts.last().map(|p| p.1);
        }
        let (a, b) = (pts[i - 1], pts[i]);
        let w = (t - a.0) as f64 / (b.0 - a.0).max(1) as f64;
        Some(a.1 + (b.1 - a.1) * w)
    }
}

/// The city background: haze episode curve, weather and diurnal shape.
#[derive(Debug, Clone)]
pub struct Background {
    /// Daily-scale PM2.5 of the episode (µg/m³); the diurnal shape and noise ride on it.
    pub pm25: Series,
    /// Wind speed override (m/s); empty = derived from the haze intensity.
    pub wind: Series,
    pub seed: u64,
}

/// Default PM2.5 when a scenario gives no curve: the 2017 Zhengzhou annual mean, 72 µg/m³
/// (docs/domain.md, simulator figures).
const DEFAULT_PM25: f64 = 72.0;

impl Background {
    /// Haze intensity 0..1: 0 at 75 µg/m³ (GB 3095 24-h limit) and below, 1 at 375 and above.
    pub fn intensity(pm25_base: f64) -> f64 {
        ((pm25_base - 75.0) / 300.0).clamp(0.0, 1.0)
    }

    /// Background at simulated time `t` (ms); `local_hour` in 0..24 (local clock time).
    pub fn at(&self, t: i64, local_hour: f64) -> Weather {
        let ts = t as f64 / 1000.0;
        let base = self.pm25.at(t).unwrap_or(DEFAULT_PM25);
        let k = Self::intensity(base);
        // Two peaks (morning traffic, evening heating + inversion), low near 04:00: docs/domain.md, simulator figures.
        let diurnal = 1.0 + 0.12 * bell(local_hour, 8.5, 1.8) + 0.25 * bell(local_hour, 21.0, 2.5)
            - 0.18 * bell(local_hour, 4.0, 2.0);
        let pm25 = base
            * diurnal
            * (1.0
                + 0.08 * smooth_noise(self.seed, ts, 1800.0)
                + 0.03 * smooth_noise(self.seed ^ 1, ts, 300.0));
        // Winter haze: low wind, high humidity (docs/domain.md, simulator figures); afternoon mixing raises the wind.
        let wind_base = self.wind.at(t).unwrap_or(3.2 - 2.4 * k);
        let wind_ms = (wind_base * (1.0 + 0.3 * bell(local_hour, 14.0, 3.0))
            + 0.3 * smooth_noise(self.seed ^ 2, ts, 900.0))
        .max(0.2);
        // PM2.5/PM10 about 0.55 in the annual means (docs/domain.md, simulator figures); haze is fine-particle
        // dominated, so the ratio rises with intensity (assumed up to 0.75).
        let ratio = 0.55 + 0.2 * k;
        // Resuspension: PM10 lowest at 2-3 m/s and rising above 4 m/s (docs/domain.md, simulator figures).
        let pm10 = pm25 / ratio * (1.0 + 0.05 * (wind_ms - 4.0).max(0.0).powi(2));
        let daily = (2.0 * std::f64::consts::PI * (local_hour - 9.0) / 24.0).sin();
        let temp_c = -1.0 + 4.0 * daily + 1.5 * smooth_noise(self.seed ^ 3, ts, 7200.0);
        let rh_pct = (45.0 + 40.0 * k - 12.0 * daily
            + 5.0 * smooth_noise(self.seed ^ 4, ts, 3600.0))
        .clamp(15.0, 98.0);
        let wind_deg = (315.0 + 60.0 * smooth_noise(self.seed ^ 5, ts, 3600.0)).rem_euclid(360.0);
        let pressure_kpa = 102.3 - 0.3 * k + 0.4 * smooth_noise(self.seed ^ 6, ts, 6.0 * 3600.0);
        Weather {
            pm25,
            pm10,
            wind_ms,
            wind_deg,
            temp_c,
            rh_pct,
            pressure_kpa,
        }
    }
}

/// What a site is doing in one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Activity {
    /// Construction work under way (machines, noise, dust).
    pub working: bool,
    /// A truck (muck truck, concrete mixer) passing the monitor.
    pub truck: bool,
}

/// The site's own contribution on top of the background.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Increment {
    pub pm25: f64,
    pub pm10: f64,
    pub tsp: f64,
    /// Noise level of the site's sources alone, dB(A).
    pub noise_dba: f64,
}

/// Static description of a site's dust sources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteSource {
    pub kind: SiteKind,
    pub phase: Phase,
    /// Bare soil and waste covered (nets, film): docs/domain.md, the office's task (bare soil covered).
    pub covered: bool,
}

/// PM10 added at the boundary monitor by work in a phase at 1 m/s wind, µg/m³. Ordered
/// earthwork >> foundation > structure > fitout > idle by how much soil each phase moves; scaled so that a working
/// day averages to tens of µg/m³, the order of the Beijing figure (31 µg/m³ on city means, §6).
pub fn phase_emission(phase: Phase) -> f64 {
    match phase {
        Phase::Earthwork => 260.0,
        Phase::Foundation => 140.0,
        Phase::Structure => 70.0,
        Phase::Fitout => 30.0,
        Phase::Idle => 0.0,
    }
}

/// Boundary noise of working machines per phase, dB(A) Leq (assumed; chosen around the GB 12523
/// day limit of 70 so work is plain against a 42-50 dB(A) background).
pub fn phase_noise(phase: Phase) -> f64 {
    match phase {
        Phase::Earthwork => 76.0,
        Phase::Foundation => 74.0,
        Phase::Structure => 70.0,
        Phase::Fitout => 62.0,
        Phase::Idle => 0.0,
    }
}

/// Chance that a truck passes in a given minute of work (assumed).
pub fn truck_rate(phase: Phase) -> f64 {
    match phase {
        Phase::Earthwork => 0.15,
        Phase::Foundation => 0.08,
        Phase::Structure => 0.04,
        Phase::Fitout => 0.02,
        Phase::Idle => 0.0,
    }
}

/// Ambient noise without the site, dB(A): quiet nights, busier days; roads carry traffic.
pub fn ambient_noise(kind: SiteKind, local_hour: f64) -> f64 {
    let day = is_day(local_hour);
    match (kind, day) {
        (SiteKind::Road, true) => 66.0,
        (SiteKind::Road, false) => 56.0,
        (_, true) => 50.0,
        (_, false) => 42.0,
    }
}

/// GB 12523-2011 day is 06:00-22:00 (docs/domain.md, limits).
pub fn is_day(local_hour: f64) -> bool {
    (6.0..22.0).contains(&local_hour)
}

/// Dilution by wind: calm air keeps the plume at the monitor (1.0 at 1 m/s).
fn dispersion(wind_ms: f64) -> f64 {
    (2.0 / (wind_ms + 1.0)).min(2.0)
}

/// The site's own increment in one second.
///
/// `sprinkle` is the fractional reduction from water (see [`sprinkle_reduction`]); `level` the
/// city warning level, which takes muck trucks off the roads at orange (docs/domain.md, warning levels).
pub fn site_increment(
    src: SiteSource,
    act: Activity,
    w: &Weather,
    local_hour: f64,
    level: Level,
    sprinkle: f64,
) -> Increment {
    let disp = dispersion(w.wind_ms);
    let (mut pm10, noise) = match src.kind {
        SiteKind::Reference => (0.0, 0.0),
        SiteKind::Road => {
            // Road dust follows traffic: morning and evening rush (assumed shape).
            let traffic = 1.0 + bell(local_hour, 8.0, 1.5) + bell(local_hour, 18.0, 1.5);
            let trucks = if level >= Level::Orange { 0.6 } else { 1.0 };
            (35.0 * traffic * trucks * disp, 0.0)
        }
        SiteKind::Construction => {
            let mut dust = 0.0;
            let mut noise: f64 = 0.0;
            if act.working {
                // Working machines resuspend more above ~4 m/s (docs/domain.md, simulator figures).
                let resusp = 1.0 + 0.15 * (w.wind_ms - 4.0).max(0.0).powi(2);
                dust += phase_emission(src.phase) * resusp * disp;
                noise = phase_noise(src.phase);
            }
            if act.truck {
                dust += 350.0 * disp;
                noise = energy_sum(noise, 78.0);
            }
            // Bare soil blows off with wind; a covered site stays low and flat (docs/domain.md, the office's task).
            let erosion = if src.covered {
                3.0
            } else {
                25.0 + 12.0 * (w.wind_ms - 3.0).max(0.0).powf(1.5)
            };
            (dust + erosion, noise)
        }
    };
    pm10 *= 1.0 - sprinkle;
    Increment {
        // Site dust is coarse: PM2.5 share 0.2-0.3, TSP 1.1-1.5 x PM10 (docs/domain.md, simulator figures).
        pm25: 0.25 * pm10,
        pm10,
        tsp: 1.4 * pm10,
        noise_dba: noise,
    }
}

/// A sprinkling run, simulated ms `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: i64,
    pub end: i64,
}

/// Fraction of the site increment removed by water at `t`: ramps to about half within 20 min of a
/// run starting and fades after it ends over 1-3 h, faster when warm, dry and windy (docs/domain.md, simulator figures).
pub fn sprinkle_reduction(runs: &[Run], t: i64, w: &Weather) -> f64 {
    const FULL: f64 = 0.55;
    let tau_s = (7200.0 * (w.rh_pct / 60.0) / (1.0 + w.wind_ms / 3.0)
        * (10.0 / (w.temp_c.max(0.0) + 10.0)))
        .clamp(3600.0, 3.0 * 3600.0);
    runs.iter()
        .map(|r| {
            if t < r.start {
                0.0
            } else if t < r.end {
                FULL * ((t - r.start) as f64 / 1_200_000.0).min(1.0)
            } else {
                let ramp = ((r.end - r.start) as f64 / 1_200_000.0).min(1.0);
                FULL * ramp * (-((t - r.end) as f64 / 1000.0) / tau_s).exp()
            }
        })
        .fold(0.0, f64::max)
}

/// Sum of two sound levels in dB (energy sum).
pub fn energy_sum(a: f64, b: f64) -> f64 {
    if a <= 0.0 {
        return b;
    }
    if b <= 0.0 {
        return a;
    }
    10.0 * (10f64.powf(a / 10.0) + 10f64.powf(b / 10.0)).log10()
}

/// Gaussian bump on the 24-h circle.
fn bell(hour: f64, mu: f64, sigma: f64) -> f64 {
    let d = (hour - mu).rem_euclid(24.0);
    let d = d.min(24.0 - d);
    (-(d * d) / (2.0 * sigma * sigma)).exp()
}

/// splitmix64: a fast, well-mixed hash for seeding deterministic noise.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a seed and a key.
pub fn unit(seed: u64, key: u64) -> f64 {
    (mix(seed ^ mix(key)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth noise in [-1, 1] varying over `period_s` seconds (cosine-interpolated value noise).
pub fn smooth_noise(seed: u64, t_s: f64, period_s: f64) -> f64 {
    let x = t_s / period_s;
    let k = x.floor();
    let f = x - k;
    let a = unit(seed, k as i64 as u64) * 2.0 - 1.0;
    let b = unit(seed, (k as i64 + 1) as u64) * 2.0 - 1.0;
    let w = (1.0 - (std::f64::consts::PI * f).cos()) / 2.0;
    a + (b - a) * w
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::time::{HOUR, MINUTE};

    const T0: i64 = 1_483_286_400_000; // 2017-01-02T00:00:00+08:00

    fn bg(pm25: f64) -> Background {
        Background {
            pm25: Series(vec![(T0, pm25)]),
            wind: Series::default(),
            seed: 7,
        }
    }

    fn mean_over_day(f: impl Fn(i64, f64) -> f64) -> f64 {
        let n = 24 * 60;
        (0..n)
            .map(|m| f(T0 + m * MINUTE, m as f64 / 60.0))
            .sum::<f64>()
            / n as f64
    }

    #[test]
    fn haze_raises_the_background() {
        let clean = mean_over_day(|t, h| bg(60.0).at(t, h).pm25);
        let haze = mean_over_day(|t, h| bg(400.0).at(t, h).pm25);
        assert!(haze > 5.0 * clean, "haze {haze} vs clean {clean}");
        assert!((300.0..550.0).contains(&haze), "haze day mean {haze}");
        let w_clean = mean_over_day(|t, h| bg(60.0).at(t, h).wind_ms);
        let w_haze = mean_over_day(|t, h| bg(400.0).at(t, h).wind_ms);
        assert!(w_haze < w_clean, "haze is calm");
    }

    #[test]
    fn diurnal_shape_has_a_low_near_four_and_an_evening_peak() {
        let b = bg(100.0);
        let at = |h: f64| b.at(T0 + (h * (HOUR as f64)) as i64, h).pm25;
        assert!(at(4.0) < at(8.5));
        assert!(at(4.0) < at(21.0));
    }

    fn weather(wind: f64) -> Weather {
        Weather {
            pm25: 100.0,
            pm10: 180.0,
            wind_ms: wind,
            wind_deg: 0.0,
            temp_c: 0.0,
            rh_pct: 60.0,
            pressure_kpa: 102.3,
        }
    }

    #[test]
    fn sprinkling_lowers_the_site_increment_then_fades() {
        let src = SiteSource {
            kind: SiteKind::Construction,
            phase: Phase::Earthwork,
            covered: true,
        };
        let w = weather(1.5);
        let working = Activity {
            working: true,
            truck: false,
        };
        let run = [Run {
            start: T0,
            end: T0 + 30 * MINUTE,
        }];
        let dry = site_increment(src, working, &w, 10.0, Level::None, 0.0).pm10;
        let r_during = sprinkle_reduction(&run, T0 + 25 * MINUTE, &w);
        let wet = site_increment(src, working, &w, 10.0, Level::None, r_during).pm10;
        assert!(wet < 0.55 * dry, "about half removed: {wet} vs {dry}");
        let r_1h = sprinkle_reduction(&run, T0 + 90 * MINUTE, &w);
        let r_6h = sprinkle_reduction(&run, T0 + 6 * HOUR, &w);
        assert!(r_during > r_1h && r_1h > r_6h && r_6h < 0.05);
        assert_eq!(sprinkle_reduction(&run, T0 - 1, &w), 0.0);
    }

    #[test]
    fn covered_idle_site_stays_near_background_and_bare_soil_rises_with_wind() {
        let idle = Activity::default();
        let covered = SiteSource {
            kind: SiteKind::Construction,
            phase: Phase::Structure,
            covered: true,
        };
        let bare = SiteSource {
            covered: false,
            ..covered
        };
        let w = weather(2.0);
        let inc = site_increment(covered, idle, &w, 3.0, Level::None, 0.0);
        assert!(
            inc.pm10 < 0.05 * w.pm10,
            "covered idle increment {}",
            inc.pm10
        );
        let calm = site_increment(bare, idle, &weather(1.0), 3.0, Level::None, 0.0).pm10;
        let windy = site_increment(bare, idle, &weather(7.0), 3.0, Level::None, 0.0).pm10;
        assert!(
            calm > 5.0 * inc.pm10 && windy > 2.0 * calm,
            "{calm} {windy}"
        );
    }

    #[test]
    fn phases_are_ordered_and_night_work_shows_in_noise() {
        let order = [
            Phase::Earthwork,
            Phase::Foundation,
            Phase::Structure,
            Phase::Fitout,
            Phase::Idle,
        ];
        for pair in order.windows(2) {
            assert!(phase_emission(pair[0]) > phase_emission(pair[1]));
        }
        let src = SiteSource {
            kind: SiteKind::Construction,
            phase: Phase::Structure,
            covered: true,
        };
        let w = weather(1.0);
        let night = 23.5;
        let quiet = energy_sum(
            ambient_noise(SiteKind::Construction, night),
            site_increment(src, Activity::default(), &w, night, Level::Red, 0.0).noise_dba,
        );
        let work = Activity {
            working: true,
            truck: false,
        };
        let loud = energy_sum(
            ambient_noise(SiteKind::Construction, night),
            site_increment(src, work, &w, night, Level::Red, 0.0).noise_dba,
        );
        // GB 12523 night limit is 55 dB(A): idle stays under it, night work is far above.
        assert!(quiet < 55.0 && loud > 65.0, "{quiet} {loud}");
    }

    #[test]
    fn series_interpolates_and_holds() {
        let s = Series(vec![(0, 10.0), (100, 20.0)]);
        assert_eq!(s.at(-5), Some(10.0));
        assert_eq!(s.at(50), Some(15.0));
        assert_eq!(s.at(500), Some(20.0));
        assert_eq!(Series::default().at(0), None);
    }
}
