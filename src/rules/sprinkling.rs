//! Sprinkling runs of one site: every device's `sprinkler_on`..`sprinkler_off` intervals, merged
//! across the site's devices (two monitors reporting one fog cannon count it once), counted per
//! local day when at least the profile's minimum run length.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct SprinklerLog {
    /// (ts, device) -> on (true) or off (false).
    events: BTreeMap<(i64, String), bool>,
}

impl SprinklerLog {
    pub fn add(&mut self, ts: i64, device: &str, on: bool) {
        self.events.insert((ts, device.to_string()), on);
    }

    /// Forget events before `ts` (days that are closed for good).
    pub fn forget_before(&mut self, ts: i64) {
        while self.events.first_key_value().is_some_and(|(k, _)| k.0 < ts) {
            self.events.pop_first();
        }
    }

    /// The site's runs, merged across devices: a run without its `sprinkler_off` lasts until
    /// `open_until`.
    pub fn intervals(&self, open_until: i64) -> Vec<(i64, i64)> {
        let mut open: BTreeMap<&str, i64> = BTreeMap::new();
        let mut runs = Vec::new();
        for ((ts, device), on) in &self.events {
            match (*on, open.get(device.as_str()).copied()) {
                (true, None) => {
                    open.insert(device, *ts);
                }
                (false, Some(start)) => {
                    open.remove(device.as_str());
                    runs.push((start, *ts));
                }
                // A repeated `on` continues the run; an `off` without `on` has nothing to end.
                _ => {}
            }
        }
        runs.extend(open.values().map(|s| (*s, open_until.max(*s))));
        runs.sort();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (s, e) in runs {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }

    /// Runs starting in [from, to) that lasted at least `min_run_ms` (open runs last until `to`).
    pub fn runs(&self, from: i64, to: i64, min_run_ms: i64) -> u32 {
        self.intervals(to)
            .into_iter()
            .filter(|(s, e)| (from..to).contains(s) && e - s >= min_run_ms)
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_devices_reporting_one_run_count_it_once() {
        let mut l = SprinklerLog::default();
        l.add(100, "a", true);
        l.add(150, "b", true);
        l.add(700, "a", false);
        l.add(720, "b", false);
        // A short blip of device b alone.
        l.add(2_000, "b", true);
        l.add(2_010, "b", false);
        assert_eq!(l.intervals(10_000), vec![(100, 720), (2_000, 2_010)]);
        assert_eq!(l.runs(0, 10_000, 300), 1);
        assert_eq!(l.runs(0, 10_000, 0), 2);
        // Still on at the close: counts until then.
        l.add(9_000, "a", true);
        assert_eq!(l.runs(0, 10_000, 300), 2);
    }
}
