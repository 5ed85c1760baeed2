//! The city warning level as a timeline: each reading is judged under the level in force at its
//! timestamp, whatever order the level changes and the readings arrive in.

use dustwatch_protocol::Level;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct LevelTimeline {
    changes: BTreeMap<i64, Level>,
}

impl LevelTimeline {
    /// Record that `level` is in force from `ts` on. Returns false when nothing changed.
    pub fn set(&mut self, ts: i64, level: Level) -> bool {
        self.changes.insert(ts, level) != Some(level)
    }

    /// The level in force at `ts` (none before the first change).
    pub fn at(&self, ts: i64) -> Level {
        self.changes
            .range(..=ts)
            .next_back()
            .map_or(Level::None, |(_, l)| *l)
    }

    /// The highest level in force at any time in [from, to).
    pub fn max_in(&self, from: i64, to: i64) -> Level {
        let start = self.at(from);
        self.changes
            .range(from..to)
            .map(|(_, l)| *l)
            .fold(start, Level::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_in_force_at_a_time() {
        let mut t = LevelTimeline::default();
        t.set(100, Level::Yellow);
        t.set(300, Level::Red);
        t.set(200, Level::Orange); // arrives out of order
        assert_eq!(t.at(99), Level::None);
        assert_eq!(t.at(100), Level::Yellow);
        assert_eq!(t.at(250), Level::Orange);
        assert_eq!(t.at(1000), Level::Red);
        assert_eq!(t.max_in(0, 150), Level::Yellow);
        assert_eq!(t.max_in(150, 250), Level::Orange);
    }
}
