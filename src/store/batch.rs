//! What writing one batch adds up to, the same for every backend and free of I/O: the outcome
//! (stored, duplicates, fresh records, dead letters by reason), the per-batch rollup deltas, the
//! newest reading of each site and the devices' last-seen times, which the backend merges into
//! its tables once per batch; and a reading's flags in their stored form.

use super::registry::Registry;
use super::rollup::{bucket, Agg};
use super::schema::ROLLUPS;
use super::{BatchOutcome, Latest};
use dustwatch_protocol::{Flag, Metric, Reading, RejectReason};
use std::collections::BTreeMap;

/// Partial aggregates of one rollup table by (site, bucket).
pub(crate) type RollupDelta<'a> = BTreeMap<(&'a str, i64), [Agg; Metric::ALL.len()]>;

/// One batch's tally, borrowing the batch's strings. Ordered maps: rows are merged in key
/// order, so two PostgreSQL writers merging the same rows lock them in the same order instead
/// of deadlocking.
pub(crate) struct BatchTally<'a> {
    /// Wall-clock time the batch is written, Unix ms.
    pub(crate) received: i64,
    pub(crate) out: BatchOutcome,
    pub(crate) rejected: BTreeMap<RejectReason, u64>,
    pub(crate) deltas: [RollupDelta<'a>; ROLLUPS.len()],
    /// The newest reading of each site in this batch, as (device, reading).
    pub(crate) newest: BTreeMap<&'a str, (&'a str, &'a Reading)>,
    /// (site, device) -> when the batch heard of it.
    pub(crate) seen: BTreeMap<(&'a str, &'a str), i64>,
}

impl<'a> BatchTally<'a> {
    pub(crate) fn new(received: i64) -> BatchTally<'a> {
        BatchTally {
            received,
            out: BatchOutcome::default(),
            rejected: BTreeMap::new(),
            deltas: Default::default(),
            newest: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// The next record of the batch begins: not fresh until stored for the first time.
    pub(crate) fn begin_record(&mut self) {
        self.out.fresh.push(false);
    }

    /// Mark record `i` of the batch stored for the first time.
    pub(crate) fn fresh(&mut self, i: usize) {
        if let Some(f) = self.out.fresh.get_mut(i) {
            *f = true;
        }
    }

    /// Mark the record begun last stored for the first time.
    pub(crate) fn fresh_last(&mut self) {
        if let Some(f) = self.out.fresh.last_mut() {
            *f = true;
        }
    }

    /// A record was kept as a dead letter for `reason`.
    pub(crate) fn refused(&mut self, reason: RejectReason) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    /// A record of the device arrived in this batch.
    pub(crate) fn seen(&mut self, site: &'a str, device: &'a str) {
        self.seen.insert((site, device), self.received);
    }

    /// Reading `i` was stored for the first time: count it, add it to the rollups and keep it
    /// when it is the site's newest (against the batch and what `known` remembers).
    pub(crate) fn stored_reading(
        &mut self,
        known: &Registry,
        i: usize,
        site: &'a str,
        device: &'a str,
        r: &'a Reading,
    ) {
        self.out.stored += 1;
        self.fresh(i);
        for (k, (_, width)) in ROLLUPS.iter().enumerate() {
            let aggs = self.deltas[k]
                .entry((site, bucket(r.ts.ms(), *width)))
                .or_default();
            for (j, m) in Metric::ALL.into_iter().enumerate() {
                if let Some(v) = r.valid(m) {
                    aggs[j].add(v);
                }
            }
        }
        let newest_ts = match self.newest.get(site) {
            Some((_, l)) => Some(l.ts.ms()),
            None => known.newest_ts(site),
        };
        if newest_ts.is_none_or(|ts| ts <= r.ts.ms()) {
            self.newest.insert(site, (device, r));
        }
        self.seen(site, device);
    }

    /// The batch's outcome, and the newest reading of each site it brought as (site, latest).
    pub(crate) fn finish(self) -> (BatchOutcome, Vec<(String, Latest)>) {
        let mut out = self.out;
        out.rejected = self.rejected.into_iter().collect();
        let latest = self
            .newest
            .into_iter()
            .map(|(site, (device, reading))| {
                let latest = Latest {
                    device: device.to_string(),
                    reading: reading.clone(),
                    received_ms: self.received,
                };
                (site.to_string(), latest)
            })
            .collect();
        (out, latest)
    }
}

/// Only the abnormal flags, as JSON (absent flags mean N; keeps rows small).
pub(crate) fn flags_json(r: &Reading) -> Option<String> {
    let abnormal: BTreeMap<&String, &Flag> =
        r.flags.iter().filter(|(_, f)| **f != Flag::N).collect();
    if abnormal.is_empty() {
        None
    } else {
        serde_json::to_string(&abnormal).ok()
    }
}
