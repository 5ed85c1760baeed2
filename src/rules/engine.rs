//! The rules engine: per-site state with one owner, driven only by event time. Feed it committed
//! records in any order; it judges each site minute by minute once the site's event-time clock
//! has passed that minute, so a live stream, an accelerated simulation, a backfill and a test
//! give the same answer.

use super::alerts::{AlertBook, Change, Raise, RuleKind, Transition};
use super::coverage::{self, NotJudged, Reason};
use super::minute::{minute_of, Minute};
use super::profile::{parse_hhmm, Profile, Severity};
use super::relevel::{ActivityLog, ActivityMinute};
use super::sprinkling::SprinklerLog;
use super::timeline::LevelTimeline;
use super::window::{Verdict, WindowState};
use crate::store::Record;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use dustwatch_protocol::{EventKind, Flag, Level, Metric, Phase, Reading, SiteInfo, SiteKind};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod days;
mod devices;
mod late_level;

pub use days::DayStats;
use days::{day_bounds, tally};

/// Minutes of per-site history kept for windows and as reference background.
const HORIZON_MS: i64 = 3 * 3_600_000;
/// How far a site's clock may run ahead of the fleet's (a device with a fast clock cannot drag
/// its site's judgement into the future).
const AHEAD_SLACK_MS: i64 = 10 * 60_000;

/// What the engine produced.
#[derive(Debug, Clone)]
pub enum Output {
    Alert(Transition),
    /// A site's local day closed in event time.
    DayClosed(DayStats),
    /// Every site has closed this local day: the daily report can be published.
    ReportDue(NaiveDate),
}

#[derive(Debug, Default)]
struct DeviceTrack {
    first_ts: i64,
    last_ts: i64,
    /// The fleet clock when this device was last heard from: a device that keeps sending, even
    /// behind the others (a backfill, an accelerated replay), is not silent.
    fleet_at_arrival: i64,
    /// Open alerts of this device, so the hot path only asks the alert book when needed.
    gap_open: bool,
    metric_gaps: Vec<Metric>,
    stuck_open: bool,
    flag_open: bool,
    last_metric_ts: HashMap<Metric, i64>,
    /// Per PM metric: last value and how many readings in a row carried it.
    stuck: HashMap<Metric, (f64, u32)>,
    flagged_run: u32,
}

#[derive(Debug, Default)]
struct ActivityAcc {
    active: i64,
    forbidden_work: i64,
    forbidden_earth: i64,
    night_active: i64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    max_noise: f64,
    max_pm10_increment: f64,
}

#[derive(Debug, Default)]
struct NoiseAcc {
    energy: f64,
    minutes: i64,
}

#[derive(Debug, Default)]
struct SiteState {
    minutes: BTreeMap<i64, Minute>,
    max_ts: i64,
    /// Minutes before this (ms) have been judged.
    judged_to: Option<i64>,
    day: Option<DayStats>,
    exceeded_minutes: BTreeSet<i64>,
    /// Exceedance minutes of the current day counted before a restart.
    exceedance_base: u32,
    /// Sprinkling runs counted before a restart, per day (saved figures).
    sprinkle_base: BTreeMap<NaiveDate, u32>,
    sprinklers: SprinklerLog,
    windows: Vec<WindowState>,
    activity: ActivityAcc,
    noise: NoiseAcc,
    devices: HashMap<String, DeviceTrack>,
    /// Judged minutes of work, for levels entered late.
    act_log: ActivityLog,
    /// Alerts opened and closed stamped in days not yet open here.
    pending: BTreeMap<NaiveDate, (u32, u32)>,
    /// The figures of the last closed day, for alerts stamped in it that are decided late.
    last_closed: Option<DayStats>,
}

pub struct Engine {
    profile: Profile,
    tz: Tz,
    sites: HashMap<String, SiteState>,
    info: HashMap<String, SiteInfo>,
    levels: LevelTimeline,
    book: AlertBook,
    /// The fleet's event-time clock (robust median of device clocks, minus lateness).
    fleet_now: i64,
    reported_to: Option<NaiveDate>,
    default_reference: Option<String>,
    /// Sites with new data since the last advance.
    touched: std::collections::BTreeSet<String>,
    /// Fleet clock of the last full sweep (gaps, silent sites, reports).
    last_sweep: i64,
    readings_since_clock: usize,
    devices: usize,
    /// The clock against which silence is judged (slow end of the fleet).
    gap_now: i64,
    /// Figures of days that were still open at the last stop, by (site, date).
    seeds: HashMap<(String, NaiveDate), DayStats>,
}

impl Engine {
    pub fn new(profile: Profile, tz: Tz) -> Engine {
        let book = AlertBook::new(profile.escalate_after, profile.recheck_s);
        Engine {
            profile,
            tz,
            sites: HashMap::new(),
            info: HashMap::new(),
            levels: LevelTimeline::default(),
            book,
            fleet_now: i64::MIN,
            reported_to: None,
            default_reference: None,
            touched: Default::default(),
            last_sweep: i64::MIN,
            readings_since_clock: 0,
            devices: 0,
            gap_now: i64::MIN,
            seeds: HashMap::new(),
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn book_mut(&mut self) -> &mut AlertBook {
        &mut self.book
    }

    pub fn book(&self) -> &AlertBook {
        &self.book
    }

    /// Registry entries; sites not listed are judged as construction sites under the defaults.
    pub fn set_sites(&mut self, sites: impl IntoIterator<Item = SiteInfo>) {
        for s in sites {
            self.info.insert(s.id.clone(), s);
        }
        // The first reference station (by id) is the background of sites that name none.
        self.default_reference = self
            .info
            .values()
            .filter(|i| i.kind == SiteKind::Reference)
            .map(|i| i.id.clone())
            .min();
    }

    /// Continue days that were open when the aggregator last stopped (saved day figures).
    pub fn seed_days(&mut self, days: impl IntoIterator<Item = DayStats>) {
        for d in days {
            self.seeds.insert((d.site.clone(), d.date), d);
        }
    }

    pub fn set_level(&mut self, ts: i64, level: Level) {
        self.levels.set(ts, level);
    }

    pub fn levels(&self) -> &LevelTimeline {
        &self.levels
    }

    fn site_info(&self, site: &str) -> (SiteKind, Phase, Option<String>) {
        match self.info.get(site) {
            Some(i) => {
                let reference = i.reference.clone().or_else(|| self.default_reference());
                (i.kind, i.phase, reference)
            }
            None => (
                SiteKind::Construction,
                Phase::default(),
                self.default_reference(),
            ),
        }
    }
    fn default_reference(&self) -> Option<String> {
        self.default_reference.clone()
    }

    fn local_date(&self, ts: i64) -> NaiveDate {
        self.tz
            .timestamp_millis_opt(ts)
            .single()
            .map(|t| t.date_naive())
            .unwrap_or_default()
    }

    /// Local minutes after midnight.
    fn local_minute_of_day(&self, ts: i64) -> i64 {
        use chrono::Timelike;
        self.tz
            .timestamp_millis_opt(ts)
            .single()
            .map_or(0, |t| i64::from(t.hour() * 60 + t.minute()))
    }

    fn day_bounds(&self, date: NaiveDate) -> (i64, i64) {
        day_bounds(self.tz, date)
    }

    /// Shortest sprinkling run that counts (0 without a sprinkling rule).
    fn min_run_ms(&self) -> i64 {
        self.profile
            .sprinkling
            .as_ref()
            .map_or(0, |r| r.get_ref().min_run_s * 1000)
    }

    /// Feed committed records; returns what changed.
    pub fn process(&mut self, records: &[Record]) -> Vec<Output> {
        let mut out = Vec::new();
        for record in records {
            match record {
                Record::Reading {
                    site,
                    device,
                    reading,
                } => self.on_reading(site, device, reading, &mut out),
                Record::Event {
                    site,
                    device,
                    event,
                } => {
                    let on = match event.kind {
                        EventKind::SprinklerOn => true,
                        EventKind::SprinklerOff => false,
                        _ => continue,
                    };
                    let min_run = self.min_run_ms();
                    let s = self.sites.entry(site.clone()).or_default();
                    s.sprinklers.add(event.ts, device, on);
                    if let Some(day) = s.day.as_mut() {
                        let (from, to) = day_bounds(self.tz, day.date);
                        day.sprinkling_runs = s.sprinkle_base.get(&day.date).copied().unwrap_or(0)
                            + s.sprinklers.runs(from, to, min_run);
                    }
                }
                Record::CityLevel { level, .. } => {
                    let before = self.levels.clone();
                    if self.levels.set(level.ts, level.level) {
                        self.rejudge_levels(&before, level.ts, &mut out);
                    }
                }
                Record::Status { .. } | Record::DeadLetter(_) => {}
            }
        }
        self.advance(&mut out);
        out
    }

    /// Count transitions into the site's day figures and emit them.
    fn record(&mut self, site: &str, transitions: Vec<Transition>, out: &mut Vec<Output>) {
        let tz = self.tz;
        if let Some(s) = self.sites.get_mut(site) {
            for t in &transitions {
                if let Some(day) = tally(tz, s, t) {
                    out.push(Output::DayClosed(day));
                }
            }
        }
        out.extend(transitions.into_iter().map(Output::Alert));
    }

    /// Move every site's judgement forward to its event-time clock.
    fn advance(&mut self, out: &mut Vec<Output>) {
        let lateness = self.profile.allowed_lateness_s * 1000;
        // The fleet clock is the median of device clocks: robust to a few devices whose clocks
        // are skewed or that backfill old data.
        // Recomputed once an eighth of the fleet reported.
        if self.readings_since_clock >= (self.devices / 8).max(1) || self.fleet_now == i64::MIN {
            self.readings_since_clock = 0;
            let mut clocks: Vec<i64> = self
                .sites
                .values()
                .flat_map(|s| s.devices.values().map(|d| d.last_ts))
                .collect();
            if clocks.is_empty() {
                return;
            }
            let mid = clocks.len() / 2;
            let (_, median, _) = clocks.select_nth_unstable(mid);
            self.fleet_now = self.fleet_now.max(*median - lateness);
            // Silence is judged against the slow end of the fleet (10th percentile): devices of
            // an accelerated or bursty fleet run apart, and a device keeping up with the slowest
            // tenth is not silent.
            // Small fleets (a test, a pilot) use the median.
            let low = if clocks.len() >= 10 {
                clocks.len() / 10
            } else {
                clocks.len() / 2
            };
            let (_, slow, _) = clocks.select_nth_unstable(low);
            self.gap_now = self.gap_now.max(*slow - lateness);
        }
        let fleet_now = self.fleet_now;
        let backfill = self.profile.max_backfill_s * 1000;

        // Sites with new data are judged now; every site (silent ones too) once the fleet clock
        // moved on by a minute.
        let sweep = self.last_sweep == i64::MIN || fleet_now >= self.last_sweep + 60_000;
        let ids: Vec<String> = if sweep {
            self.touched.clear();
            let mut all: Vec<String> = self.sites.keys().cloned().collect();
            all.sort();
            all
        } else {
            std::mem::take(&mut self.touched).into_iter().collect()
        };
        for id in &ids {
            let Some(max_ts) = self.sites.get(id).map(|s| s.max_ts) else {
                continue;
            };
            let target = (max_ts - lateness)
                .min(fleet_now + AHEAD_SLACK_MS)
                .max(fleet_now - backfill);
            let target_minute = minute_of(target + 1);
            self.judge_site(id, target_minute, out);
            let transitions = if max_ts - lateness >= target - 60_000 {
                self.book.recheck(id, target)
            } else {
                Vec::new()
            };
            self.record(id, transitions, out);
        }
        if sweep {
            self.last_sweep = fleet_now;
            self.check_gaps(out);
            self.check_reports(out);
        }
    }

    fn check_reports(&mut self, out: &mut Vec<Output>) {
        let now = self.fleet_now;
        let today = self.local_date(now);
        let Some(last) = self.reported_to else {
            // First clock of this run: days before it are not ours to report.
            self.reported_to = today.pred_opt();
            return;
        };
        let backfill = self.profile.max_backfill_s * 1000;
        let mut day = last.succ_opt().unwrap_or(last);
        while day < today {
            let (_, end) = self.day_bounds(day);
            let all_closed = self
                .sites
                .values()
                .all(|s| s.day.as_ref().is_none_or(|d| d.date > day));
            if all_closed || now - backfill >= end {
                out.push(Output::ReportDue(day));
                self.reported_to = Some(day);
                day = day.succ_opt().unwrap_or(day);
            } else {
                break;
            }
        }
    }

    /// Judge `site` minute by minute up to (not including) `to`.
    fn judge_site(&mut self, id: &str, to: i64, out: &mut Vec<Output>) {
        let Some(mut s) = self.sites.remove(id) else {
            return;
        };
        let (kind, phase, reference) = self.site_info(id);
        let mut from = s
            .judged_to
            .unwrap_or_else(|| s.minutes.keys().next().copied().unwrap_or(to));
        if s.windows.len() != self.profile.windows.len() {
            s.windows = vec![WindowState::default(); self.profile.windows.len()];
        }
        // Never walk further back than the horizon (a restart after a long pause).
        from = from.max(to - HORIZON_MS - 60_000 * 60 * 24);
        let mut transitions = Vec::new();
        let mut m = from;
        while m < to {
            self.judge_minute(
                id,
                &mut s,
                kind,
                phase,
                reference.as_deref(),
                m,
                &mut transitions,
                out,
            );
            m += 60_000;
        }
        if to > from {
            s.judged_to = Some(to);
        }
        // Forget minutes no window or reference lookup can need any more.
        let keep_from = s.judged_to.unwrap_or(to) - HORIZON_MS;
        while s
            .minutes
            .first_key_value()
            .is_some_and(|(k, _)| *k < keep_from)
        {
            s.minutes.pop_first();
        }
        while s
            .exceeded_minutes
            .first()
            .is_some_and(|k| *k < keep_from - 86_400_000)
        {
            s.exceeded_minutes.pop_first();
        }
        self.sites.insert(id.to_string(), s);
        // Counted into their days as they were made (judge_minute).
        out.extend(transitions.into_iter().map(Output::Alert));
    }

    #[allow(clippy::too_many_arguments)]
    fn judge_minute(
        &mut self,
        id: &str,
        s: &mut SiteState,
        kind: SiteKind,
        phase: Phase,
        reference: Option<&str>,
        m: i64,
        transitions: &mut Vec<Transition>,
        out: &mut Vec<Output>,
    ) {
        let date = self.local_date(m);
        if s.day.as_ref().is_none_or(|d| d.date != date) {
            if let Some(prev) = s.day.take() {
                self.close_day(id, kind, prev, s, transitions, out);
            }
            let mut day = DayStats::new(id, date);
            // A day that was open when the aggregator stopped continues from its saved figures.
            if let Some(seed) = self.seeds.remove(&(id.to_string(), date)) {
                *s.sprinkle_base.entry(date).or_default() += seed.sprinkling_runs;
                s.exceedance_base = seed.exceedance_minutes;
                day = DayStats {
                    sprinkling_runs: 0,
                    exceedance_minutes: seed.exceedance_minutes,
                    ..seed
                };
            } else {
                s.exceedance_base = 0;
            }
            let (from, to) = day_bounds(self.tz, date);
            day.sprinkling_runs = s.sprinkle_base.get(&date).copied().unwrap_or(0)
                + s.sprinklers.runs(from, to, self.min_run_ms());
            // Alerts stamped in this day that were decided before it opened (a device's fault
            // raised on its own clock, ahead of the site's judgement).
            if let Some((opened, closed)) = s.pending.remove(&date) {
                day.alerts_opened += opened;
                day.alerts_closed += closed;
            }
            s.pending.retain(|d, _| *d > date);
            s.day = Some(day);
        }
        let k0 = transitions.len();
        self.judge_minute_rules(id, s, kind, phase, reference, m, transitions);
        for t in &transitions[k0..] {
            if let Some(day) = tally(self.tz, s, t) {
                out.push(Output::DayClosed(day));
            }
        }
    }

    /// The minute's rules (the day it belongs to is open).
    #[allow(clippy::too_many_arguments)]
    fn judge_minute_rules(
        &mut self,
        id: &str,
        s: &mut SiteState,
        kind: SiteKind,
        phase: Phase,
        reference: Option<&str>,
        m: i64,
        transitions: &mut Vec<Transition>,
    ) {
        let end = m + 60_000;
        // The level in force during the minute: set at or before its start.
        let level = self.levels.at(m);
        let empty = Minute::default();
        let minute = s.minutes.get(&m).unwrap_or(&empty).clone();
        let ref_minute = reference
            .filter(|r| *r != id)
            .and_then(|r| self.sites.get(r))
            .and_then(|r| r.minutes.get(&m))
            .cloned();
        if let Some(day) = s.day.as_mut() {
            if minute.has_pm() {
                day.data_minutes += 1;
            }
            day.level_max = day.level_max.max(level);
        }

        // Kind a: windowed means.
        for (i, rule) in self.profile.windows.iter().enumerate() {
            let rule = rule.get_ref();
            if !rule.kinds.contains(&kind) {
                continue;
            }
            let w = &mut s.windows[i];
            w.acc.add(rule, Some(&minute), ref_minute.as_ref());
            if end % (rule.window_min * 60_000) != 0 {
                continue;
            }
            let window_start = end - rule.window_min * 60_000;
            // Windows are aligned to the epoch, not to local midnight: the allowance is kept per
            // local day of the window's last instant.
            let reference = reference.filter(|r| *r != id);
            match w.judge(rule, phase, self.local_date(end - 1), reference) {
                Verdict::Unjudged(reason) => {
                    // Said, per site and window: silence must not read as compliance.
                    if let Some(day) = s.day.as_mut() {
                        day.not_judged_minutes += rule.window_min as u32;
                        coverage::add(
                            &mut day.not_judged,
                            &rule.id,
                            rule.window_min as u32,
                            reason,
                        );
                    }
                }
                Verdict::Judged {
                    value,
                    site_mean,
                    ref_mean,
                    limit,
                    clear,
                    fallback,
                    exceeded,
                    alert,
                    cleared,
                } => {
                    if exceeded {
                        for k in 0..rule.window_min {
                            s.exceeded_minutes.insert(window_start + k * 60_000);
                        }
                    }
                    if alert {
                        transitions.extend(self.book.raise(Raise {
                            site: id,
                            rule: &rule.id,
                            kind: RuleKind::Window,
                            severity: rule.severity,
                            ts: end - 1,
                            level,
                            evidence: json!({
                                "metric": rule.metric.name(), "window_min": rule.window_min,
                                "window_start": window_start, "window_end": end,
                                "value": round1(value), "site_mean": round1(site_mean),
                                "reference_mean": ref_mean.map(round1), "limit": limit,
                                "exceedances_today": w.today, "daily_budget": rule.daily_budget,
                                "fallback": fallback.as_ref().map(|r| format!("absolute limit, because {r}")),
                            }),
                        }));
                    } else if cleared {
                        transitions.extend(self.book.clear(id, &rule.id, end - 1));
                    } else if value >= clear {
                        // Not clean (in the hysteresis band, or over the limit within the
                        // allowance): a re-inspection running now starts again.
                        transitions.extend(self.book.hold(id, &rule.id, end - 1));
                    }
                }
            }
        }
        if let Some(day) = s.day.as_mut() {
            let (d0, d1) = self.day_bounds(day.date);
            day.exceedance_minutes =
                s.exceedance_base + s.exceeded_minutes.range(d0..d1).count() as u32;
        }

        if kind != SiteKind::Construction {
            return;
        }
        let act = self.profile.activity.get_ref();
        let noise = minute.mean(Metric::NoiseDba);
        let increment = match (
            minute.mean(Metric::Pm10),
            ref_minute.as_ref().and_then(|r| r.mean(Metric::Pm10)),
        ) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let dust_burst = act
            .dust_pm10_increment
            .is_some_and(|t| increment.is_some_and(|i| i >= t));
        // A fog cannon or a water truck is loud and its run is required: during a run the noise
        // is not evidence of work. Dust over a work threshold still is: digging under the mist.
        let sprinkling = s
            .sprinklers
            .intervals(end)
            .iter()
            .any(|(a, b)| *a < end && *b > m);
        let digs = act.earthwork_phases.contains(&phase)
            && increment.is_some_and(|i| i >= act.earthwork_pm10_increment);
        let loud = !sprinkling && noise.is_some_and(|n| n >= act.noise_dba);
        let active = loud || dust_burst || (sprinkling && digs);
        // Earthwork needs a phase that digs (registry) and a dust burst over the background.
        let earth = active && digs;
        let in_night = self.profile.night.as_ref().is_some_and(|n| {
            let n = n.get_ref();
            in_window(self.local_minute_of_day(m), &n.start, &n.end)
        });
        s.act_log.push(
            ActivityMinute {
                start: m,
                work: active,
                earthwork: earth,
            },
            self.profile.max_backfill_s * 1000,
        );
        let a = &mut s.activity;
        if active {
            a.active += 1;
            a.first_ts.get_or_insert(m);
            a.last_ts = Some(end);
            a.max_noise = a.max_noise.max(noise.unwrap_or(0.0));
            a.max_pm10_increment = a.max_pm10_increment.max(increment.unwrap_or(0.0));
            if let Some(day) = s.day.as_mut() {
                day.activity_minutes += 1;
                if in_night {
                    day.night_activity_minutes += 1;
                }
            }
        }
        if let Some(r) = &self.profile.restriction {
            let r = r.get_ref();
            if active && level >= r.all_work_from {
                a.forbidden_work += 1;
            }
            if earth && level >= r.earthwork_from {
                a.forbidden_earth += 1;
            }
        }
        if active && in_night {
            a.night_active += 1;
        }
        if end % (act.window_min * 60_000) == 0 {
            let a = std::mem::take(&mut s.activity);
            let evidence = |what: &str| {
                json!({"activity": what, "level": level.name(), "active_minutes": a.active,
                       "window_start": end - act.window_min * 60_000, "window_end": end,
                       "first_active": a.first_ts, "last_active": a.last_ts,
                       "max_noise_dba": round1(a.max_noise),
                       "max_pm10_increment": round1(a.max_pm10_increment)})
            };
            if let Some(r) = &self.profile.restriction {
                let r = r.get_ref();
                for (rule, count, what) in [
                    ("work-restriction", a.forbidden_work, "work"),
                    ("earthwork-restriction", a.forbidden_earth, "earthwork"),
                ] {
                    if count >= act.min_active_minutes {
                        transitions.extend(self.book.raise(Raise {
                            site: id,
                            rule,
                            kind: RuleKind::Restriction,
                            severity: r.severity,
                            ts: end - 1,
                            level,
                            evidence: evidence(what),
                        }));
                    } else if count == 0 {
                        transitions.extend(self.book.clear(id, rule, end - 1));
                    } else {
                        // Some forbidden work, below the raise threshold: not clean.
                        transitions.extend(self.book.hold(id, rule, end - 1));
                    }
                }
            }
            if let Some(n) = &self.profile.night {
                if a.night_active >= act.min_active_minutes {
                    transitions.extend(self.book.raise(Raise {
                        site: id,
                        rule: "night-activity",
                        kind: RuleKind::Night,
                        severity: n.get_ref().severity,
                        ts: end - 1,
                        level,
                        evidence: evidence("night work"),
                    }));
                } else if a.night_active == 0 {
                    transitions.extend(self.book.clear(id, "night-activity", end - 1));
                } else {
                    transitions.extend(self.book.hold(id, "night-activity", end - 1));
                }
            }
        }

        // Kind d: GB 12523 Leq against the day or night limit.
        if let Some(rule) = &self.profile.noise {
            let rule = rule.get_ref();
            if let Some(e) = minute.noise_energy() {
                s.noise.energy += e;
                s.noise.minutes += 1;
            }
            if end % (rule.window_min * 60_000) == 0 {
                let acc = std::mem::take(&mut s.noise);
                if acc.minutes * 2 >= rule.window_min {
                    let leq = 10.0 * (acc.energy / acc.minutes as f64).log10();
                    let start = end - rule.window_min * 60_000;
                    let is_day = in_window(
                        self.local_minute_of_day(start),
                        &rule.day_start,
                        &rule.night_start,
                    );
                    let limit = if is_day {
                        rule.day_limit_dba
                    } else {
                        rule.night_limit_dba
                    };
                    if leq > limit {
                        transitions.extend(self.book.raise(Raise {
                            site: id,
                            rule: "noise",
                            kind: RuleKind::Noise,
                            severity: rule.severity,
                            ts: end - 1,
                            level,
                            evidence: json!({"leq_dba": round1(leq), "limit_dba": limit,
                                             "period": if is_day {"day"} else {"night"},
                                             "window_start": start, "window_end": end}),
                        }));
                    } else if leq < limit - rule.hysteresis_db {
                        transitions.extend(self.book.clear(id, "noise", end - 1));
                    } else {
                        transitions.extend(self.book.hold(id, "noise", end - 1));
                    }
                }
            }
        }
    }

    /// The current (not yet closed) day of every site, for live reports.
    pub fn open_days(&self) -> Vec<DayStats> {
        self.sites.values().filter_map(|s| s.day.clone()).collect()
    }

    /// The fleet's event-time clock.
    pub fn fleet_now(&self) -> i64 {
        self.fleet_now
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// True when `minute` (after local midnight) is inside [start, end), which may wrap midnight.
fn in_window(minute: i64, start: &str, end: &str) -> bool {
    let (Some(a), Some(b)) = (parse_hhmm(start), parse_hhmm(end)) else {
        return false;
    };
    if a <= b {
        (a..b).contains(&minute)
    } else {
        minute >= a || minute < b
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Engine>();
    let _ = Severity::Info;
}
