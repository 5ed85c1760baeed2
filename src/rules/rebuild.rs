//! Reading back from the store what the engine needs to take sites over (see
//! `engine::takeover`): their saved progress, recent readings and events, open days, open
//! alerts and offence history, and the city level timeline.

use super::engine::{day_stats, Engine, SiteHistory, StationHistory, Takeover};
use super::minute::minute_of;
use crate::store::{AlertWriter, StoreError, StoreReader};
use dustwatch_protocol::time::DAY;
use std::collections::{BTreeSet, HashMap};

/// Everything stored about the sites `owns` selects that a takeover restores, with the minutes
/// of their reference stations that `held` (the sites judged here once they are taken over)
/// leaves to another instance.
pub fn load(
    engine: &Engine,
    store: &dyn AlertWriter,
    reader: &dyn StoreReader,
    owns: &dyn Fn(&str) -> bool,
    held: &dyn Fn(&str) -> bool,
) -> Result<Takeover, StoreError> {
    let progress = store.progress()?;
    let newest: HashMap<String, i64> = reader
        .latest()?
        .into_iter()
        .map(|(site, l)| (site, l.reading.ts.ms()))
        .collect();
    let mut sites: Vec<String> = reader
        .sites()?
        .into_iter()
        .map(|s| s.info.id)
        .filter(|s| owns(s))
        .collect();
    sites.sort();
    let mut out = Takeover::default();
    let mut oldest: Option<i64> = None;
    for site in sites {
        let judged_to = progress.get(&site).copied();
        // Never judged: everything recent is new to judge; else the history before the point
        // the previous owner reached, and all after it.
        let Some(anchor) = judged_to.or_else(|| newest.get(&site).copied()) else {
            out.sites.push(SiteHistory {
                site,
                ..Default::default()
            });
            continue;
        };
        let from = engine.replay_from(anchor);
        oldest = Some(oldest.map_or(from, |o| o.min(from)));
        out.sites.push(SiteHistory {
            readings: reader.readings(&site, from, i64::MAX)?,
            events: reader.events(&site, from, i64::MAX)?,
            judged_to,
            site,
            open_days: Vec::new(),
        });
    }
    if let Some(oldest) = oldest {
        let foreign: BTreeSet<String> = out
            .sites
            .iter()
            .filter_map(|h| engine.reference_of(&h.site))
            .filter(|r| !held(r))
            .collect();
        let from = minute_of(oldest);
        for reference in foreign {
            out.background.push(StationHistory {
                readings: reader.readings(&reference, from + 1, i64::MAX)?,
                station: reference,
                from,
            });
        }
        // A day or two before the oldest replayed minute covers every time zone's open day.
        let from = chrono::DateTime::from_timestamp_millis(oldest - 2 * DAY)
            .map_or(chrono::NaiveDate::MIN, |t| t.date_naive());
        let mut days: HashMap<String, Vec<_>> = HashMap::new();
        for d in reader.days(from, chrono::NaiveDate::MAX)? {
            if !d.closed && owns(&d.site) {
                days.entry(d.site.clone()).or_default().push(day_stats(&d));
            }
        }
        for h in &mut out.sites {
            h.open_days = days.remove(&h.site).unwrap_or_default();
        }
    }
    let (open, history, _) = store.load()?;
    out.open = open.into_iter().filter(|a| owns(&a.site)).collect();
    out.history = history.into_iter().filter(|(s, _, _)| owns(s)).collect();
    out.levels = reader
        .city_levels()?
        .into_iter()
        .map(|l| (l.ts.ms(), l.level))
        .collect();
    Ok(out)
}
