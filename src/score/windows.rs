//! The window rules' truth: what each window rule of the profile decides on the air perfect
//! sensors would have measured (the simulator's per-minute series), window by window, and the
//! windows the aggregator's alerts were raised on, read back from each alert's history.

use crate::rules::profile::{Mode, Profile, WindowRule};
use crate::store::{AlertFilter, StoreError, StoreReader};
use chrono::TimeZone;
use chrono_tz::Tz;
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{Change, Metric, RuleKind, SiteKind};
use sensors_sim::truth::PerfectSeries;
use std::collections::{BTreeMap, BTreeSet};

/// One window of one rule at one site: (site, rule id, window start ms).
pub type WindowKey = (String, String, i64);

/// The truth's verdict on every window it can judge: `true` when the rule's alert condition
/// holds (over the limit for the minimum duration, beyond the day's allowance).
pub fn truth_windows(
    profile: &Profile,
    series: &[PerfectSeries],
    tz: Tz,
    end_ms: i64,
) -> BTreeMap<WindowKey, bool> {
    let by_id: BTreeMap<&str, &PerfectSeries> =
        series.iter().map(|s| (s.site.as_str(), s)).collect();
    // Sites that name no reference are judged against the first reference station by id.
    let default_ref = series
        .iter()
        .filter(|s| s.kind == SiteKind::Reference)
        .map(|s| s.site.as_str())
        .min();
    let mut out = BTreeMap::new();
    for rule in &profile.windows {
        for s in series.iter().filter(|s| rule.kinds.contains(&s.kind)) {
            let reference = s
                .reference
                .as_deref()
                .or(default_ref)
                .filter(|r| *r != s.site)
                .and_then(|r| by_id.get(r).copied());
            judge_site(rule, s, reference, tz, end_ms, &mut out);
        }
    }
    out
}

fn column(s: &PerfectSeries, m: Metric) -> &[Option<f64>] {
    match m {
        Metric::Pm25 => &s.pm25,
        Metric::Tsp => &s.tsp,
        _ => &s.pm10,
    }
}

fn value_at(s: &PerfectSeries, m: Metric, t: i64) -> Option<f64> {
    if t < s.start_ms {
        return None;
    }
    let i = usize::try_from((t - s.start_ms) / MINUTE).ok()?;
    column(s, m).get(i).copied().flatten()
}

/// The rule as written (docs/rules.md), applied to one site's windows in order.
fn judge_site(
    rule: &WindowRule,
    s: &PerfectSeries,
    reference: Option<&PerfectSeries>,
    tz: Tz,
    end_ms: i64,
    out: &mut BTreeMap<WindowKey, bool>,
) {
    let w_ms = rule.window_min * MINUTE;
    let need = ((rule.min_coverage * rule.window_min as f64).ceil() as i64).max(1);
    let mut start = s.start_ms.div_euclid(w_ms) * w_ms;
    if start < s.start_ms {
        start += w_ms;
    }
    let (mut above, mut run_min) = (false, 0i64);
    let mut today: (Option<chrono::NaiveDate>, u32) = (None, 0);
    while start + w_ms <= end_ms {
        let end = start + w_ms;
        let date = tz
            .timestamp_millis_opt(end - 1)
            .single()
            .map(|t| t.date_naive());
        if today.0 != date {
            today = (date, 0);
        }
        let minutes = (0..rule.window_min).map(|k| start + k * MINUTE);
        let site: Vec<f64> = minutes
            .clone()
            .filter_map(|t| value_at(s, rule.metric, t))
            .collect();
        let refs: Vec<f64> = minutes
            .filter_map(|t| reference.and_then(|r| value_at(r, rule.metric, t)))
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let judged = if (site.len() as i64) < need {
            None
        } else {
            match rule.mode {
                Mode::Absolute => Some((mean(&site), rule.raise_for(s.phase), rule.clear)),
                Mode::Increment if (refs.len() as i64) < need => rule
                    .fallback_raise
                    .map(|r| (mean(&site), r, rule.fallback_clear.unwrap_or(r))),
                Mode::Increment => {
                    let r = mean(&refs);
                    let subtracted = rule.reference_cap.map_or(r, |cap| r.min(cap));
                    Some((
                        mean(&site) - subtracted,
                        rule.raise_for(s.phase),
                        rule.clear,
                    ))
                }
            }
        };
        if let Some((value, limit, clear)) = judged {
            if value > limit {
                run_min += rule.window_min;
                today.1 += 1;
                if run_min >= rule.min_duration_min {
                    above = true;
                }
            } else {
                run_min = 0;
                if value < clear.min(limit) {
                    above = false;
                }
            }
            let alert = above && today.1 > rule.daily_budget;
            out.insert((s.site.clone(), rule.id.clone(), start), alert);
        }
        start = end;
    }
}

/// The windows the aggregator held each window rule's alert active at: a window's verdict is
/// stamped at its last instant, so the alert's state just after that instant (from its history
/// of opens, reactivations, clears and closes) is the aggregator's verdict on the window. Only
/// the windows in `keys` are asked about.
pub fn alert_windows<'a>(
    reader: &dyn StoreReader,
    profile: &Profile,
    keys: impl Iterator<Item = &'a WindowKey>,
) -> Result<BTreeSet<WindowKey>, StoreError> {
    let lengths: BTreeMap<&str, i64> = profile
        .windows
        .iter()
        .map(|r| (r.id.as_str(), r.window_min * MINUTE))
        .collect();
    // Per (site, rule): state changes in time order, true = active from then on.
    let mut changes: BTreeMap<(String, String), Vec<(i64, bool)>> = BTreeMap::new();
    for a in reader.alerts(&AlertFilter::default())? {
        if a.kind != RuleKind::Window || !lengths.contains_key(a.rule.as_str()) {
            continue;
        }
        let list = changes.entry((a.site.clone(), a.rule.clone())).or_default();
        for c in reader.alert_history(a.id)? {
            match c.change {
                Change::Opened | Change::Reactivated => list.push((c.ts.ms(), true)),
                Change::Cleared | Change::Closed => list.push((c.ts.ms(), false)),
                _ => {}
            }
        }
    }
    for list in changes.values_mut() {
        list.sort();
    }
    let mut out = BTreeSet::new();
    for k in keys {
        let (Some(len), Some(list)) = (
            lengths.get(k.1.as_str()),
            changes.get(&(k.0.clone(), k.1.clone())),
        ) else {
            continue;
        };
        let at = k.2 + len - 1;
        let i = list.partition_point(|(t, _)| *t <= at);
        if i > 0 && list[i - 1].1 {
            out.insert(k.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::time::HOUR;
    use dustwatch_protocol::Phase;

    // 2017-01-02T00:00:00+08:00
    const DAY1: i64 = 1_483_286_400_000;
    const H: i64 = HOUR;

    fn series(site: &str, kind: SiteKind, start: i64, pm10: Vec<Option<f64>>) -> PerfectSeries {
        PerfectSeries {
            site: site.into(),
            kind,
            phase: Phase::Structure,
            reference: (kind != SiteKind::Reference).then(|| "ref".to_string()),
            start_ms: start,
            pm25: vec![None; pm10.len()],
            tsp: vec![None; pm10.len()],
            pm10,
        }
    }

    #[test]
    fn the_allowance_is_per_local_day_and_the_reference_is_capped() {
        let profile = Profile::parse(
            include_str!("../../rules/hebei-db13-2934.toml"),
            "rules/hebei-db13-2934.toml",
        )
        .expect("the shipped profile parses");
        // From 20:00 local on day 1, six hours: the reference at 300 (subtracted as 150); the
        // site 100 over that for five hours (the fifth is 00:00-01:00 of day 2), then clean.
        let start = DAY1 + 20 * H;
        let site: Vec<Option<f64>> = (0..6 * 60)
            .map(|m| Some(if m >= 5 * 60 { 200.0 } else { 250.0 }))
            .collect();
        let reference = vec![Some(300.0); 6 * 60];
        let s = vec![
            series("s1", SiteKind::Construction, start, site),
            series("ref", SiteKind::Reference, start, reference),
        ];
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        let v = truth_windows(&profile, &s, tz, start + 6 * H);
        let alert = |h: i64| v.get(&("s1".into(), "pm10-increment-hourly".into(), start + h * H));
        // Day 1: two exceedances are allowed; the third and fourth (22:00, 23:00) are alerts.
        assert_eq!(
            (0..6).map(alert).collect::<Vec<_>>(),
            vec![
                Some(&false),
                Some(&false),
                Some(&true),
                Some(&true),
                // 00:00 of day 2: a new day's allowance.
                Some(&false),
                Some(&false)
            ]
        );
        // The reference station itself is not judged by a construction rule.
        assert!(v.keys().all(|k| k.0 == "s1"));
    }

    #[test]
    fn too_little_data_is_not_judged() {
        let profile = Profile::default_profile();
        let start = DAY1;
        // 40 of 60 minutes (coverage 0.75 needs 45): the truth does not speak for the window.
        let site: Vec<Option<f64>> = (0..60).map(|m| (m < 40).then_some(900.0)).collect();
        let s = vec![
            series("s1", SiteKind::Construction, start, site),
            series("ref", SiteKind::Reference, start, vec![Some(100.0); 60]),
        ];
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        let v = truth_windows(&profile, &s, tz, start + H);
        assert!(v.is_empty(), "{v:?}");
    }
}
