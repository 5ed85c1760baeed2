//! Taking over sites another engine judged (the partition of an instance that died, or this
//! process before a restart), and letting go of sites another engine judges now.
//!
//! Taking over replays the sites' stored recent readings and events through the ordinary
//! judgement, quietly, up to the minute the old owner had judged to (its saved progress), so
//! windows, device tracks and sprinkler logs stand where the old owner's stood. What that replay
//! decides is thrown away: the old owner's decisions are the stored alerts, which replace the
//! replay's. Minutes after that point are judged as new, so a transition is decided once.

use super::*;
use crate::rules::alerts::Alert;
use crate::rules::kinds::data_gap::{device_rule, metric_rule};
use dustwatch_protocol::time::{MINUTE, SECOND};

/// One site's stored recent history, as read back for a takeover.
#[derive(Debug, Default)]
pub struct SiteHistory {
    pub site: String,
    /// (device, reading), oldest first.
    pub readings: Vec<(String, Reading)>,
    /// (device, event), oldest first.
    pub events: Vec<(String, dustwatch_protocol::Event)>,
    /// The minute (ms, exclusive) the previous owner had judged the site to; `None` when no
    /// engine ever judged it.
    pub judged_to: Option<i64>,
    /// The site's still-open days as last saved.
    pub open_days: Vec<DayStats>,
}

/// Everything a takeover of some sites restores.
#[derive(Debug, Default)]
pub struct Takeover {
    pub sites: Vec<SiteHistory>,
    /// The sites' open alerts.
    pub open: Vec<Alert>,
    /// Offences of the sites' closed alerts, per (site, rule).
    pub history: Vec<(String, String, u32)>,
    /// The city level timeline (all of it; setting a known change again is a no-op).
    pub levels: Vec<(i64, Level)>,
    /// Reference stations of the sites that another instance judges.
    pub background: Vec<StationHistory>,
}

/// A reference station's stored readings, as read back for the sites judged against it.
#[derive(Debug, Default)]
pub struct StationHistory {
    pub station: String,
    /// The minute (ms) from which its readings were read.
    pub from: i64,
    /// (device, reading), oldest first.
    pub readings: Vec<(String, Reading)>,
}

impl Engine {
    /// Where the stored history to replay for a site judged up to `anchor` starts: the start
    /// of that local day (daily budgets and day figures count from there), and at least the
    /// longest window the profile judges, the minutes kept as reference background and the
    /// allowed lateness before it.
    pub fn replay_from(&self, anchor: i64) -> i64 {
        let longest = self
            .profile
            .windows
            .iter()
            .map(|w| w.window_min * MINUTE)
            .max()
            .unwrap_or(0);
        let span = longest.max(HORIZON_MS) + self.profile.allowed_lateness_s * SECOND;
        let (day_start, _) = self.day_bounds(self.local_date(anchor));
        day_start.min(anchor.saturating_sub(span))
    }

    /// Sites held now, with the minute each is judged to.
    pub fn progress(&self) -> impl Iterator<Item = (&str, i64)> {
        self.sites
            .iter()
            .filter_map(|(id, s)| s.judged_to.map(|j| (id.as_str(), j)))
    }

    /// Drop every state of the sites `owns` selects: another engine judges them now.
    pub fn release_sites(&mut self, owns: &dyn Fn(&str) -> bool) {
        let gone: Vec<String> = self.sites.keys().filter(|s| owns(s)).cloned().collect();
        for id in &gone {
            if let Some(s) = self.sites.remove(id) {
                self.devices = self.devices.saturating_sub(s.devices.len());
            }
        }
        self.touched.retain(|s| !owns(s));
        self.seeds.retain(|(s, _), _| !owns(s));
        self.book.forget_sites(owns);
    }

    /// Take over sites judged elsewhere until now: replay their history quietly, then restore
    /// their alerts and day figures as stored. Their next records are judged from where the
    /// previous owner stopped.
    pub fn adopt_sites(&mut self, t: Takeover) {
        let names: BTreeSet<String> = t.sites.iter().map(|h| h.site.clone()).collect();
        self.release_sites(&|s: &str| names.contains(s));
        for (ts, level) in t.levels {
            self.levels.set(ts, level);
        }
        // The replay decides into a scratch book; the stored alerts are the decisions.
        let scratch = AlertBook::new(self.profile.escalate_after, self.profile.recheck_s);
        let mut real = std::mem::replace(&mut self.book, scratch);
        let mut ignored = Vec::new();
        // Foreign reference stations before the replay, whose windows look their minutes up.
        for b in &t.background {
            self.put_background(&b.station, b.from, &b.readings);
        }
        // Every site's records first: a site's minutes are judged against its reference
        // station's, which may be one of the sites taken over.
        for h in &t.sites {
            self.replay_records(h, &mut ignored);
        }
        for h in t.sites {
            if let Some(to) = h.judged_to {
                self.judge_site(&h.site, to, &mut ignored);
                if let Some(s) = self.sites.get_mut(&h.site) {
                    s.judged_to = Some(to);
                }
            }
            ignored.clear();
            self.restore_days(&h.site, h.open_days);
        }
        real.restore(t.open, t.history, 0);
        self.book = real;
        // Device flags mirror the open alerts they stand for.
        for id in &names {
            let Some(s) = self.sites.get_mut(id) else {
                continue;
            };
            for (device, d) in s.devices.iter_mut() {
                d.gaps.device = self.book.open_alert(id, &device_rule(device)).is_some();
                d.gaps.metrics = Metric::ALL
                    .into_iter()
                    .filter(|m| self.book.open_alert(id, &metric_rule(device, *m)).is_some())
                    .collect();
            }
        }
    }

    fn replay_records(&mut self, h: &SiteHistory, out: &mut Vec<Output>) {
        // No saved figures are folded in during the replay: they are set after it.
        self.seeds.retain(|(s, _), _| *s != h.site);
        let mut events = h.events.iter().peekable();
        for (device, reading) in &h.readings {
            while let Some((device, event)) = events.next_if(|(_, e)| e.ts <= reading.ts) {
                self.replay_event(&h.site, device, event);
            }
            self.on_reading(&h.site, device, reading, out);
        }
        for (device, event) in events {
            self.replay_event(&h.site, device, event);
        }
        if h.readings.is_empty() {
            self.sites.entry(h.site.clone()).or_default();
        }
    }

    fn replay_event(&mut self, site: &str, device: &str, event: &dustwatch_protocol::Event) {
        let on = match event.kind {
            EventKind::SprinklerOn => true,
            EventKind::SprinklerOff => false,
            _ => return,
        };
        self.sites
            .entry(site.to_string())
            .or_default()
            .sprinklers
            .add(event.ts.ms(), device, on);
    }

    /// The saved figures of the site's open days replace the replay's partial ones; the
    /// replayed exceedances and sprinkling runs of that day become part of the saved counts.
    fn restore_days(&mut self, site: &str, days: Vec<DayStats>) {
        let min_run = self.min_run_ms();
        let tz = self.tz;
        for saved in days {
            let Some(s) = self.sites.get_mut(site) else {
                self.seeds.insert((saved.site.clone(), saved.date), saved);
                continue;
            };
            if s.day.as_ref().is_some_and(|d| d.date == saved.date) {
                let (from, to) = day_bounds(tz, saved.date);
                let exceeded = s.exceeded_minutes.range(from..to).count() as u32;
                s.exceedance_base = saved.exceedance_minutes.saturating_sub(exceeded);
                let runs = s.sprinklers.runs(from, to, min_run);
                s.sprinkle_base
                    .insert(saved.date, saved.sprinkling_runs.saturating_sub(runs));
                s.day = Some(saved);
            } else if s.day.as_ref().is_none_or(|d| d.date < saved.date) {
                // Not reached by the replay: continued when the day opens.
                self.seeds.insert((saved.site.clone(), saved.date), saved);
            }
        }
    }
}
