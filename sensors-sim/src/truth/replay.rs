//! Replays every device's measuring half offline (the same random stream, sprinkler runs and
//! faults as in the run) to learn what the window rules need: the true air each site's monitors
//! stood in, minute by minute, and which readings the monitors flagged.

use crate::device::sample::Sampler;
use crate::faults::FaultKind;
use crate::scenario::Plan;
use dustwatch_protocol::time::{MINUTE, SECOND};
use dustwatch_protocol::{Phase, SiteKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What perfect PM sensors at one site would have measured, per minute of event time (a
/// reading's minute is the one its interval ends in). `null` where no monitor of the site
/// sampled (powered off), a fault altered what it sent (stuck, drift, spikes, invalid or
/// malformed values, a skewed clock), or every monitor flagged the value (over its range: the
/// rules do not count a flagged value, and the true one is beyond what the monitor can say).
/// There the truth does not speak for the minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfectSeries {
    pub site: String,
    pub kind: SiteKind,
    pub phase: Phase,
    /// The site's reference station, as the registry names it.
    pub reference: Option<String>,
    /// Start of the first minute (ms).
    pub start_ms: i64,
    pub pm25: Vec<Option<f64>>,
    pub pm10: Vec<Option<f64>>,
    pub tsp: Vec<Option<f64>>,
}

/// A run of consecutive readings of one device with a non-N flag on a PM value.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRun {
    pub site: String,
    pub device: String,
    /// Start of the first flagged reading's interval, end of the last one's (ms).
    pub start: i64,
    pub end: i64,
    pub readings: u32,
}

fn alters_values(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Stuck
            | FaultKind::Drift
            | FaultKind::Spikes
            | FaultKind::Negative
            | FaultKind::Nan
            | FaultKind::Malformed
            | FaultKind::ClockSkew
    )
}

/// The minute a reading counts in: its `ts` is the end of its interval (as the aggregator counts).
fn minute_of(ts: i64) -> i64 {
    (ts - 1).div_euclid(MINUTE) * MINUTE
}

/// Replay `[plan.begin_ms, end_ms)`.
pub fn replay(plan: &Plan, end_ms: i64) -> (Vec<PerfectSeries>, Vec<FlagRun>) {
    let i_ms = i64::from(plan.interval_s.max(1)) * SECOND;
    let first_end = crate::device::align_up(plan.begin_ms, i_ms) + i_ms;
    let first_minute = minute_of(first_end);
    let minutes = usize::try_from((end_ms - first_minute).max(0) / MINUTE).unwrap_or(0);
    // Per site: sums and counts of the three PM metrics per minute, and minutes to leave out.
    struct Acc {
        sum: Vec<[f64; 3]>,
        n: Vec<[u32; 3]>,
        bad: Vec<bool>,
    }
    let mut sites: BTreeMap<usize, Acc> = BTreeMap::new();
    let mut flags = Vec::new();
    for dev in &plan.devices {
        let acc = sites.entry(dev.site.index).or_insert_with(|| Acc {
            sum: vec![[0.0; 3]; minutes],
            n: vec![[0; 3]; minutes],
            bad: vec![false; minutes],
        });
        let mut sampler = Sampler::new(plan, dev);
        // Power cuts, as the device's timeline applies them: the interval ending at the cut is
        // sampled, the next one after power returns ends one interval after it.
        let cuts: Vec<(i64, i64)> = dev
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::PowerLoss)
            .map(|f| (f.start, crate::device::align_up(f.end, i_ms)))
            .collect();
        let mut run: Option<FlagRun> = None;
        let mut end = first_end;
        while end <= end_ms {
            if cuts.iter().any(|(off, on)| *off < end && end <= *on) {
                end += i_ms;
                continue;
            }
            let s = sampler.interval(plan, dev, end, plan.interval_s);
            let start = end - i_ms;
            let idx = usize::try_from((minute_of(end) - first_minute) / MINUTE).ok();
            if let Some(i) = idx.filter(|i| *i < minutes) {
                for (m, name) in ["pm25", "pm10", "tsp"].iter().enumerate() {
                    if !s.reading.flags.contains_key(*name) {
                        acc.sum[i][m] += s.perfect[m];
                        acc.n[i][m] += 1;
                    }
                }
                if dev
                    .faults
                    .iter()
                    .any(|f| alters_values(f.kind) && f.start < end && start < f.end)
                {
                    acc.bad[i] = true;
                }
            }
            let flagged = !s.reading.flags.is_empty();
            match (&mut run, flagged) {
                (Some(r), true) => {
                    r.end = end;
                    r.readings += 1;
                }
                (None, true) => {
                    run = Some(FlagRun {
                        site: dev.site.info.id.clone(),
                        device: dev.id.clone(),
                        start,
                        end,
                        readings: 1,
                    })
                }
                (_, false) => flags.extend(run.take()),
            }
            end += i_ms;
        }
        flags.extend(run.take());
    }
    let series = plan
        .sites
        .iter()
        .filter_map(|site| {
            let acc = sites.get(&site.index)?;
            let col = |m: usize| -> Vec<Option<f64>> {
                (0..minutes)
                    .map(|i| {
                        (acc.n[i][m] > 0 && !acc.bad[i])
                            .then(|| round1(acc.sum[i][m] / f64::from(acc.n[i][m])))
                    })
                    .collect()
            };
            Some(PerfectSeries {
                site: site.info.id.clone(),
                kind: site.info.kind,
                phase: site.info.phase,
                reference: site.info.reference.clone(),
                start_ms: first_minute,
                pm25: col(0),
                pm10: col(1),
                tsp: col(2),
            })
        })
        .collect();
    (series, flags)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
