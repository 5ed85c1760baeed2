//! Which sites the rules task judges: all of them (one instance) or those of the partitions
//! this instance holds (several instances over NATS). It rebuilds sites from the store when they
//! are taken over, drops them when they are let go, keeps records of other sites out of the
//! engine, and saves how far each site was judged so the next owner continues from there.

use super::engine::{Engine, Output};
use super::error::RulesError;
use crate::store::{AlertWriter, Record, StoreReader};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The partition a site's messages go to (the servers' subject mapping).
pub type PartitionOf = std::sync::Arc<dyn Fn(&str) -> u32 + Send + Sync>;

/// Which sites this engine judges, and where it rebuilds them from.
pub struct Ownership {
    pub reader: std::sync::Arc<dyn StoreReader>,
    pub sites: Sites,
}

pub enum Sites {
    /// Every site (one instance): all are rebuilt from the store at start.
    All,
    /// The sites of the partitions this instance holds (several instances over NATS): rebuilt
    /// when a partition is adopted, dropped when it is released.
    Partitioned(PartitionOf),
}

/// How often an instance that may not receive the city level itself reads it from the store.
const LEVELS_EVERY: Duration = Duration::from_secs(2);
/// How often the readings of reference stations judged elsewhere are read from the store (the
/// sites judged against them wait for them).
pub const BACKGROUND_EVERY: Duration = Duration::from_millis(500);

pub struct Owned {
    ownership: Option<Ownership>,
    /// Partitions held (partitioned ownership only).
    held: BTreeSet<u32>,
    /// Progress as last saved, per site.
    saved: HashMap<String, i64>,
    levels_read: Instant,
    background_read: Instant,
}

impl Owned {
    pub fn new(ownership: Option<Ownership>) -> Owned {
        Owned {
            ownership,
            held: BTreeSet::new(),
            saved: HashMap::new(),
            levels_read: Instant::now(),
            background_read: Instant::now(),
        }
    }

    /// At start: every site is rebuilt (one instance), or none is held yet (partitioned).
    pub fn start(
        &mut self,
        engine: &mut Engine,
        store: &dyn AlertWriter,
    ) -> Result<(), RulesError> {
        let Some(o) = &self.ownership else {
            return Ok(());
        };
        match &o.sites {
            Sites::All => {
                let t =
                    super::rebuild::load(engine, store, o.reader.as_ref(), &|_| true, &|_| true)?;
                remember(&mut self.saved, &t);
                tracing::info!(sites = t.sites.len(), "rules rebuilt from the store");
                engine.adopt_sites(t);
            }
            Sites::Partitioned(_) => engine.release_sites(&|_| true),
        }
        Ok(())
    }

    /// Take over a partition's sites.
    pub fn adopt(
        &mut self,
        partition: u32,
        engine: &mut Engine,
        store: &dyn AlertWriter,
    ) -> Result<usize, RulesError> {
        let Some(Ownership {
            reader,
            sites: Sites::Partitioned(partition_of),
        }) = &self.ownership
        else {
            return Ok(0);
        };
        let owns = |s: &str| partition_of(s) == partition;
        let mut held_after = self.held.clone();
        held_after.insert(partition);
        let held = |s: &str| held_after.contains(&partition_of(s));
        let t = super::rebuild::load(engine, store, reader.as_ref(), &owns, &held)?;
        let n = t.sites.len();
        self.saved.retain(|s, _| !owns(s));
        remember(&mut self.saved, &t);
        engine.adopt_sites(t);
        engine.set_foreign_references(&held);
        self.held = held_after;
        tracing::info!(
            partition,
            sites = n,
            "partition's sites rebuilt from the store"
        );
        Ok(n)
    }

    pub fn release(&mut self, partition: u32, engine: &mut Engine) {
        let Some(Ownership {
            sites: Sites::Partitioned(partition_of),
            ..
        }) = &self.ownership
        else {
            return;
        };
        let owns = |s: &str| partition_of(s) == partition;
        engine.release_sites(&owns);
        self.saved.retain(|s, _| !owns(s));
        self.held.remove(&partition);
        // A reference station of this partition is judged elsewhere now: background from the
        // store for the sites still held here.
        let held = &self.held;
        engine.set_foreign_references(&|s: &str| held.contains(&partition_of(s)));
        tracing::info!(partition, "partition's sites released");
    }

    /// Drop the readings and events of sites this instance does not hold (a batch committed
    /// just before its partition moved on).
    pub fn keep_owned(&self, records: &mut Vec<Record>) {
        let Some(Ownership {
            sites: Sites::Partitioned(partition_of),
            ..
        }) = &self.ownership
        else {
            return;
        };
        records.retain(|r| match r {
            Record::Reading { site, .. } | Record::Event { site, .. } => {
                self.held.contains(&partition_of(site))
            }
            _ => true,
        });
    }

    /// Reference stations judged by another instance: their new stored readings become
    /// background minutes every fraction of a second (wall clock), from the oldest minute a site
    /// judged here still needs.
    pub fn refresh_background(&mut self, engine: &mut Engine) -> Vec<Output> {
        let Some(reader) = self.due(|o| &mut o.background_read, BACKGROUND_EVERY) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (reference, from) in engine.background_wanted() {
            let Some(from) = from else {
                continue;
            };
            match reader.readings(&reference, from + 1, i64::MAX) {
                Ok(readings) => out.extend(engine.set_background(&reference, from, &readings)),
                Err(e) => {
                    tracing::warn!(error = %e, %reference, "could not read a reference station's readings");
                }
            }
        }
        out
    }

    /// The store to read what other instances stored from, when this instance holds partitions
    /// and the read timed by `last` is `every` old: it is then timed from now.
    fn due(
        &mut self,
        last: impl Fn(&mut Owned) -> &mut Instant,
        every: Duration,
    ) -> Option<std::sync::Arc<dyn StoreReader>> {
        let Some(Ownership {
            reader,
            sites: Sites::Partitioned(_),
        }) = &self.ownership
        else {
            return None;
        };
        let reader = reader.clone();
        let at = last(self);
        if at.elapsed() < every {
            return None;
        }
        *at = Instant::now();
        Some(reader)
    }

    /// The city level reaches only the instance holding its partition: the others read new
    /// level changes from the store every few seconds and judge them as late levels.
    pub fn refresh_levels(&mut self, engine: &mut Engine) -> Vec<Output> {
        let Some(reader) = self.due(|o| &mut o.levels_read, LEVELS_EVERY) else {
            return Vec::new();
        };
        let levels = match reader.city_levels() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the city levels");
                return Vec::new();
            }
        };
        let new: Vec<Record> = levels
            .into_iter()
            .filter(|l| engine.levels().at(l.ts.ms()) != l.level)
            .map(|level| Record::CityLevel {
                level,
                source: "store".into(),
            })
            .collect();
        if new.is_empty() {
            Vec::new()
        } else {
            engine.process(&new)
        }
    }

    /// The progress of the sites whose judgement moved on since the last save, to be saved
    /// with the batch's alert changes.
    pub fn progress_changes(&self, engine: &Engine) -> Vec<(String, i64)> {
        if self.ownership.is_none() {
            return Vec::new();
        }
        engine
            .progress()
            .filter(|(s, j)| self.saved.get(*s) != Some(j))
            .map(|(s, j)| (s.to_string(), j))
            .collect()
    }

    /// What [`Owned::progress_changes`] gave is in the store now.
    pub fn progress_saved(&mut self, saved: Vec<(String, i64)>) {
        self.saved.extend(saved);
    }
}

/// The progress the takeover found saved, as saved.
fn remember(saved: &mut HashMap<String, i64>, t: &super::engine::Takeover) {
    for h in &t.sites {
        if let Some(j) = h.judged_to {
            saved.insert(h.site.clone(), j);
        }
    }
}
