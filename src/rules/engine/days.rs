//! A site's local day: its figures, the sprinkling verdict at its close, and which day an alert
//! change counts in.

use super::*;
use crate::rules::kinds::sprinkling::{self, DayVerdict, SprinklingDay};
use crate::store::DayRow;
use dustwatch_protocol::time::SECOND;

/// One site's figures for one local day (the daily report's line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayStats {
    pub site: String,
    pub date: NaiveDate,
    pub exceedance_minutes: u32,
    pub data_minutes: u32,
    pub activity_minutes: u32,
    pub night_activity_minutes: u32,
    pub sprinkling_runs: u32,
    pub alerts_opened: u32,
    pub alerts_closed: u32,
    pub level_max: Level,
    /// Minutes of windows that could not be judged (all window rules together).
    pub not_judged_minutes: u32,
    /// What could not be judged in the day, per rule, and why.
    pub not_judged: Vec<NotJudged>,
}

impl DayStats {
    pub(crate) fn new(site: &str, date: NaiveDate) -> DayStats {
        DayStats {
            site: site.to_string(),
            date,
            exceedance_minutes: 0,
            data_minutes: 0,
            activity_minutes: 0,
            night_activity_minutes: 0,
            sprinkling_runs: 0,
            alerts_opened: 0,
            alerts_closed: 0,
            level_max: Level::None,
            not_judged_minutes: 0,
            not_judged: Vec::new(),
        }
    }
}

impl Engine {
    /// The day's figures at its close, and the sprinkling rule's verdict on it.
    pub(super) fn close_day(
        &mut self,
        id: &str,
        kind: SiteKind,
        mut day: DayStats,
        s: &mut SiteState,
        transitions: &mut Vec<Transition>,
        out: &mut Vec<Output>,
    ) {
        let (start, end) = self.day_bounds(day.date);
        day.sprinkling_runs = s.sprinkle_base.get(&day.date).copied().unwrap_or(0)
            + s.sprinklers.runs(start, end, self.min_run_ms());
        // Events older than the backfill horizon are final; those of the day just closed are
        // kept, so a late one judges it again.
        s.sprinklers
            .forget_before(start.min(end - self.profile.max_backfill_s * SECOND));
        let mut judged = Vec::new();
        if let (Some(rule), SiteKind::Construction) = (&self.profile.sprinkling, kind) {
            let figures = SprinklingDay {
                date: day.date,
                end,
                level_max: self.levels.max_in(start, end),
                runs: day.sprinkling_runs,
                data_minutes: day.data_minutes,
            };
            match sprinkling::judge_day(rule, &figures) {
                DayVerdict::NotDue => {}
                DayVerdict::NotJudged(reason) => {
                    coverage::add(&mut day.not_judged, sprinkling::RULE, 1440, reason)
                }
                DayVerdict::Judged(d) => d.apply(&mut self.book, id, &mut judged),
            }
        }
        // What was decided within the day was counted as it was made; what is decided at its
        // close is stamped at its last instant and counts here.
        for t in &judged {
            bump(&mut day, t.change);
        }
        s.last_closed = Some(day.clone());
        out.push(Output::DayClosed(day));
        transitions.extend(judged);
    }
}

impl Engine {
    /// A sprinkling event of a closed day arrived: count the day's runs again and, when that
    /// changes the verdict, raise the alert the day now deserves or withdraw the one it no
    /// longer does. Only the last closed day is kept to be judged again.
    pub(super) fn rejudge_sprinkling(&mut self, id: &str, date: NaiveDate, out: &mut Vec<Output>) {
        let Some(rule) = self.profile.sprinkling.clone() else {
            return;
        };
        if self.site_info(id).0 != SiteKind::Construction {
            return;
        }
        let (start, end) = self.day_bounds(date);
        let min_run = self.min_run_ms();
        let level = self.levels.max_in(start, end);
        let Some(s) = self.sites.get_mut(id) else {
            return;
        };
        let Some(day) = s.last_closed.as_mut().filter(|d| d.date == date) else {
            return;
        };
        let runs = s.sprinkle_base.get(&date).copied().unwrap_or(0)
            + s.sprinklers.runs(start, end, min_run);
        if runs == day.sprinkling_runs {
            return;
        }
        day.sprinkling_runs = runs;
        let figures = day.clone();
        let raised_for_day = self.book.open_alert(id, sprinkling::RULE).is_some_and(|a| {
            a.state == AlertState::Active
                && a.evidence.get("date").and_then(|d| d.as_str()) == Some(&date.to_string())
        });
        let again = SprinklingDay {
            date,
            end,
            level_max: level,
            runs,
            data_minutes: figures.data_minutes,
        };
        let mut transitions = Vec::new();
        if let Some(d) = sprinkling::judge_day_again(&rule, &again, raised_for_day) {
            d.apply(&mut self.book, id, &mut transitions);
        }
        if transitions.is_empty() {
            out.push(Output::DayClosed(figures));
        }
        self.record(id, transitions, out);
    }
}

/// First and last-plus-one millisecond of a local day.
pub(super) fn day_bounds(tz: Tz, date: NaiveDate) -> (i64, i64) {
    let (start, end) = dustwatch_protocol::Zone::from(tz).day_bounds(date);
    (start.ms(), end.ms())
}

fn bump(day: &mut DayStats, change: Change) {
    match change {
        Change::Opened => day.alerts_opened += 1,
        Change::Closed => day.alerts_closed += 1,
        _ => {}
    }
}

/// Count an alert opening or closing into the site's figures of the local day of its stamp
/// (each change counts once, in the day the daily report lists it under). Returns the last closed
/// day's figures again when the change belongs to it.
pub(super) fn tally(tz: Tz, s: &mut SiteState, t: &Transition) -> Option<DayStats> {
    let ts = match t.change {
        Change::Opened => t.alert.opened_ts.ms(),
        Change::Closed => t.alert.closed_ts.unwrap_or(t.alert.updated_ts).ms(),
        _ => return None,
    };
    let date = tz
        .timestamp_millis_opt(ts)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    match s.day.as_mut() {
        Some(day) if day.date == date => bump(day, t.change),
        Some(day) if day.date > date => {
            if let Some(c) = s.last_closed.as_mut().filter(|c| c.date == date) {
                bump(c, t.change);
                return Some(c.clone());
            }
            // Older days are final: the change is still stored with its alert.
            tracing::debug!(site = %t.alert.site, %date, "alert change for a day long closed");
        }
        _ => {
            let e = s.pending.entry(date).or_default();
            if t.change == Change::Opened {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    None
}

/// A saved day row back into engine figures.
pub fn day_stats(r: &DayRow) -> DayStats {
    DayStats {
        site: r.site.clone(),
        date: r.date,
        exceedance_minutes: r.exceedance_minutes,
        data_minutes: r.data_minutes,
        activity_minutes: r.activity_minutes,
        night_activity_minutes: r.night_activity_minutes,
        sprinkling_runs: r.sprinkling_runs,
        alerts_opened: r.alerts_opened,
        alerts_closed: r.alerts_closed,
        level_max: r.level_max,
        not_judged_minutes: r.not_judged_minutes,
        not_judged: r.not_judged.clone(),
    }
}

pub fn day_row(d: &DayStats, closed: bool) -> DayRow {
    DayRow {
        site: d.site.clone(),
        date: d.date,
        exceedance_minutes: d.exceedance_minutes,
        data_minutes: d.data_minutes,
        activity_minutes: d.activity_minutes,
        night_activity_minutes: d.night_activity_minutes,
        sprinkling_runs: d.sprinkling_runs,
        alerts_opened: d.alerts_opened,
        alerts_closed: d.alerts_closed,
        level_max: d.level_max,
        closed,
        not_judged_minutes: d.not_judged_minutes,
        not_judged: d.not_judged.clone(),
    }
}
