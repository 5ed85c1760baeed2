//! State kept hot in memory so the pages never scan for it: the latest reading per site.
//! Written once per committed batch by the store writer, read by the web.

use super::Latest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::RwLock;

#[derive(Debug)]
pub struct Hot {
    latest: RwLock<HashMap<String, Latest>>,
    /// The fleet clock (see [`fleet_median`]), `i64::MIN` before any reading.
    fleet_clock: AtomicI64,
}

impl Default for Hot {
    fn default() -> Self {
        Hot {
            latest: RwLock::default(),
            fleet_clock: AtomicI64::new(i64::MIN),
        }
    }
}

/// The lower median of the sites' newest event times: it moves only once more than half of the
/// sites are past it, so one device with a wrong clock (or a hostile one) cannot move it.
pub fn fleet_median(mut newest: Vec<i64>) -> Option<i64> {
    if newest.is_empty() {
        return None;
    }
    let mid = (newest.len() - 1) / 2;
    let (_, median, _) = newest.select_nth_unstable(mid);
    Some(*median)
}

impl Hot {
    /// Replace the entries of a committed batch (the writer only passes newer readings).
    pub fn update(&self, entries: impl IntoIterator<Item = (String, Latest)>) {
        let mut map = self.latest.write().unwrap_or_else(|p| p.into_inner());
        for (site, latest) in entries {
            map.insert(site, latest);
        }
    }

    /// Move the fleet clock forward to `to` (never back).
    pub fn advance_fleet_clock(&self, to: i64) {
        self.fleet_clock.fetch_max(to, Relaxed);
    }

    /// The clock the fleet agrees on; retention, "offline" and data age follow it.
    pub fn fleet_clock(&self) -> Option<i64> {
        let t = self.fleet_clock.load(Relaxed);
        (t != i64::MIN).then_some(t)
    }

    /// Drop sites retention deleted.
    pub fn forget(&self, sites: &[String]) {
        let mut map = self.latest.write().unwrap_or_else(|p| p.into_inner());
        for site in sites {
            map.remove(site);
        }
    }

    pub fn latest(&self, site: &str) -> Option<Latest> {
        let map = self.latest.read().unwrap_or_else(|p| p.into_inner());
        map.get(site).cloned()
    }

    pub fn all(&self) -> HashMap<String, Latest> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clock_cannot_move_the_median() {
        let t = 1_483_516_800_000;
        assert_eq!(fleet_median(vec![t, t + 1, 4_102_444_000_000]), Some(t + 1));
        // Two sites: the clock follows the one behind.
        assert_eq!(fleet_median(vec![4_102_444_000_000, t]), Some(t));
        assert_eq!(fleet_median(vec![t]), Some(t));
        assert_eq!(fleet_median(vec![]), None);
    }

    #[test]
    fn fleet_clock_never_moves_back() {
        let hot = Hot::default();
        assert_eq!(hot.fleet_clock(), None);
        hot.advance_fleet_clock(10);
        hot.advance_fleet_clock(5);
        assert_eq!(hot.fleet_clock(), Some(10));
    }
}
