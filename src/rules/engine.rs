//! The rules engine: per-site state with one owner, driven only by event time. Feed it committed
//! records in any order; it judges each site minute by minute once the site's event-time clock
//! has passed that minute, so a live stream, an accelerated simulation, a backfill and a test
//! give the same answer.

use super::activity::ActivityWindow;
use super::alerts::{AlertBook, AlertState, Change, Transition};
use super::coverage::{self, NotJudged};
use super::kinds::data_gap::{DeviceClock, OpenGaps};
use super::kinds::device_fault::FaultTrack;
use super::kinds::noise::NoiseAcc;
use super::kinds::restriction::Forbidden;
use super::minute::{minute_of, Minute};
use super::profile::{Profile, Severity};
use super::relevel::{ActivityLog, ActivityMinute};
use super::sprinkling::SprinklerLog;
use super::timeline::LevelTimeline;
use super::window::WindowState;
use crate::store::Record;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use dustwatch_protocol::time::{DAY, HOUR, MINUTE, SECOND};
use dustwatch_protocol::{EventKind, Level, Metric, Phase, Reading, SiteInfo, SiteKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod background;
mod days;
mod devices;
mod judge;
mod late_level;
pub mod takeover;

use days::{day_bounds, tally};
pub use days::{day_row, day_stats, DayStats};
use judge::SiteRole;
pub use takeover::{SiteHistory, StationHistory, Takeover};

/// Minutes of per-site history kept for windows and as reference background.
const HORIZON_MS: i64 = 3 * HOUR;
/// How far a site's clock may run ahead of the fleet's (a device with a fast clock cannot drag
/// its site's judgement into the future).
const AHEAD_SLACK_MS: i64 = 10 * MINUTE;

/// What the engine produced.
#[derive(Debug, Clone)]
pub enum Output {
    Alert(Transition),
    /// A site's local day closed in event time.
    DayClosed(DayStats),
    /// Every site has closed this local day: the daily report can be published.
    ReportDue(NaiveDate),
}

/// One device of a site: when it was heard from, and what its gap and fault rules track.
#[derive(Debug, Default)]
struct DeviceTrack {
    clock: DeviceClock,
    gaps: OpenGaps,
    fault: FaultTrack,
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
    /// The current activity window: its working minutes, those the level forbids, those in
    /// the night hours.
    activity: ActivityWindow,
    forbidden: Forbidden,
    night_active: i64,
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
    /// Reference stations judged by another instance, kept for window lookups only.
    background: HashMap<String, background::Background>,
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
            background: HashMap::new(),
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
        super::kinds::local_date(self.tz, ts)
    }

    fn day_bounds(&self, date: NaiveDate) -> (i64, i64) {
        day_bounds(self.tz, date)
    }

    /// Shortest sprinkling run that counts (0 without a sprinkling rule).
    fn min_run_ms(&self) -> i64 {
        self.profile
            .sprinkling
            .as_ref()
            .map_or(0, |r| r.min_run_s * SECOND)
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
                    let date = self.local_date(event.ts.ms());
                    let horizon = self
                        .fleet_now
                        .saturating_sub(self.profile.max_backfill_s * SECOND);
                    let s = self.sites.entry(site.clone()).or_default();
                    s.sprinklers.add(event.ts.ms(), device, on);
                    let mut closed_day = None;
                    if let Some(day) = s.day.as_mut() {
                        let (from, to) = day_bounds(self.tz, day.date);
                        day.sprinkling_runs = s.sprinkle_base.get(&day.date).copied().unwrap_or(0)
                            + s.sprinklers.runs(from, to, min_run);
                        closed_day = (date < day.date).then_some(date);
                    }
                    // An event of a day already closed, within the backfill horizon: that day
                    // is judged again.
                    if let Some(date) = closed_day.filter(|_| event.ts.ms() >= horizon) {
                        self.rejudge_sprinkling(site, date, &mut out);
                    }
                }
                Record::CityLevel { level, .. } => {
                    let before = self.levels.clone();
                    if self.levels.set(level.ts.ms(), level.level) {
                        self.rejudge_levels(&before, level.ts.ms(), &mut out);
                    }
                }
                Record::Status { .. } | Record::CommandReply { .. } | Record::DeadLetter(_) => {}
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
        let lateness = self.profile.allowed_lateness_s * SECOND;
        // The fleet clock is the median of device clocks: robust to a few devices whose clocks
        // are skewed or that backfill old data.
        // Recomputed once an eighth of the fleet reported.
        if self.readings_since_clock >= (self.devices / 8).max(1) || self.fleet_now == i64::MIN {
            self.readings_since_clock = 0;
            let mut clocks: Vec<i64> = self
                .sites
                .values()
                .flat_map(|s| s.devices.values().map(|d| d.clock.last_ts))
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
        let backfill = self.profile.max_backfill_s * SECOND;

        // Sites with new data are judged now; every site (silent ones too) once the fleet clock
        // moved on by a minute.
        let sweep = self.last_sweep == i64::MIN || fleet_now >= self.last_sweep + MINUTE;
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
            let floor = fleet_now - backfill;
            let mut target = (max_ts - lateness)
                .min(fleet_now + AHEAD_SLACK_MS)
                .max(floor);
            // A reference judged elsewhere: not past what its data has reached (bounded).
            if let Some(hold) = self.reference_hold(id, floor) {
                target = target.min(hold);
            }
            let target_minute = minute_of(target + 1);
            self.judge_site(id, target_minute, out);
            let transitions = if max_ts - lateness >= target - MINUTE {
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
        let backfill = self.profile.max_backfill_s * SECOND;
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
        let role = SiteRole {
            id,
            kind,
            phase,
            reference: reference.as_deref(),
        };
        let mut from = s
            .judged_to
            .unwrap_or_else(|| s.minutes.keys().next().copied().unwrap_or(to));
        if s.windows.len() != self.profile.windows.len() {
            s.windows = vec![WindowState::default(); self.profile.windows.len()];
        }
        // Never walk further back than the horizon (a restart after a long pause).
        from = from.max(to - HORIZON_MS - DAY);
        let mut transitions = Vec::new();
        let mut m = from;
        while m < to {
            self.judge_minute(&role, &mut s, m, &mut transitions, out);
            m += MINUTE;
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
            .is_some_and(|k| *k < keep_from - DAY)
        {
            s.exceeded_minutes.pop_first();
        }
        self.sites.insert(id.to_string(), s);
        // Counted into their days as they were made (judge_minute).
        out.extend(transitions.into_iter().map(Output::Alert));
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

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Engine>();
    let _ = Severity::Info;
}
