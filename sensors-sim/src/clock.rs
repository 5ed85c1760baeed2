//! Simulated time: how far the simulation is, and how long to wait for a simulated instant.
//!
//! Payload `ts` is simulated time. With `Speed::Factor(f)` the simulated clock runs `f` times
//! faster than the wall clock from a fixed anchor; with `Speed::Max` there is no shared clock:
//! each device advances as fast as the broker acknowledges its messages.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

/// Simulated seconds per real second, or as fast as the broker accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Factor(f64),
    Max,
}

impl Default for Speed {
    fn default() -> Self {
        Speed::Factor(60.0)
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Factor(x) => write!(f, "{x}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("speed `{0}` is neither `max` nor a positive number of simulated seconds per second")]
    BadSpeed(String),
    #[error("duration `{0}` is not like `90s`, `15m`, `6h`, `2d` or `1h30m`")]
    BadDuration(String),
}

impl FromStr for Speed {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Factor(x)),
            _ => Err(TimeError::BadSpeed(s.to_string())),
        }
    }
}

/// Parse `90s`, `15m`, `6h`, `2d`, `1h30m` (units s, m, h, d; a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    let bad = || TimeError::BadDuration(s.to_string());
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// The shared simulated clock of one run.
#[derive(Debug, Clone)]
pub struct SimClock {
    start_ms: i64,
    speed: Speed,
    anchor: Instant,
}

impl SimClock {
    pub fn new(start_ms: i64, speed: Speed) -> SimClock {
        SimClock {
            start_ms,
            speed,
            anchor: Instant::now(),
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    pub fn is_max(&self) -> bool {
        self.speed == Speed::Max
    }

    /// Simulated now. With `Speed::Max` there is no shared clock; callers use their own progress.
    pub fn now_ms(&self) -> i64 {
        match self.speed {
            Speed::Factor(f) => {
                self.start_ms + (self.anchor.elapsed().as_secs_f64() * f * 1000.0) as i64
            }
            Speed::Max => self.start_ms,
        }
    }

    /// The real instant at which the simulated time `sim_ms` is reached.
    pub fn real_deadline(&self, sim_ms: i64) -> Instant {
        match self.speed {
            Speed::Factor(f) => {
                let sim_s = (sim_ms - self.start_ms).max(0) as f64 / 1000.0;
                self.anchor + Duration::from_secs_f64(sim_s / f)
            }
            Speed::Max => self.anchor,
        }
    }

    /// Wait until the simulated time `sim_ms` (returns at once with `Speed::Max`).
    pub async fn sleep_until(&self, sim_ms: i64) {
        if !self.is_max() {
            tokio::time::sleep_until(self.real_deadline(sim_ms)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::time::MINUTE;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("6x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5h3").is_err());
    }

    #[test]
    fn parses_speed() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("60".parse::<Speed>(), Ok(Speed::Factor(60.0)));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn factor_clock_runs_faster_than_real_time() {
        let clock = SimClock::new(1_000_000, Speed::Factor(60.0));
        clock.sleep_until(1_000_000 + MINUTE).await;
        // One simulated minute is one real second at speed 60; paused time advances exactly.
        assert_eq!(clock.now_ms(), 1_000_000 + MINUTE);
    }
}
