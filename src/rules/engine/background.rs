//! Reference stations another instance judges (their partition is held elsewhere): their minutes
//! are kept as background for the windows of the sites judged here, read from the store, and
//! never judged here (no alerts, days, reports or fleet clock of their own).
//!
//! A site judged against such a station is held at the station's clock minus the allowed
//! lateness, so it sees the same reference minutes as one instance receiving everything in one
//! stream. The hold is bounded: once the fleet clock is the backfill horizon past, the site is
//! judged anyway and says "reference missing" where the station has no data.

use super::*;

/// One foreign reference station's recent minutes, as last read from the store.
#[derive(Debug)]
pub(super) struct Background {
    pub(super) minutes: BTreeMap<i64, Minute>,
    /// Event time of its newest stored reading (`i64::MIN` before any).
    pub(super) max_ts: i64,
}

impl Default for Background {
    fn default() -> Background {
        Background {
            minutes: BTreeMap::new(),
            max_ts: i64::MIN,
        }
    }
}

impl Engine {
    /// The reference stations of the sites judged here (`held`: those held now and seen, and
    /// the registered ones held) that are judged elsewhere: their minutes are kept as background
    /// from now on. Stations no longer needed, or held here now, are forgotten.
    pub fn set_foreign_references(&mut self, held: &dyn Fn(&str) -> bool) {
        let registered = self.info.keys().filter(|id| held(id));
        let wanted: BTreeSet<String> = self
            .sites
            .keys()
            .chain(registered)
            .filter_map(|id| self.site_info(id).2)
            // Unregistered sites not seen yet will be judged against the default station.
            .chain(self.default_reference())
            .filter(|r| !held(r))
            .collect();
        self.background.retain(|r, _| wanted.contains(r));
        for r in wanted {
            self.background.entry(r).or_default();
        }
    }

    /// The foreign reference stations kept as background, with the event time from which
    /// their stored readings are still needed: the oldest minute a site judged against one has
    /// not yet judged, but never more than the kept horizon before the station's newest
    /// reading. `None` while no site judged against it has data.
    pub fn background_wanted(&self) -> Vec<(String, Option<i64>)> {
        self.background
            .iter()
            .map(|(r, b)| {
                let from = self
                    .sites
                    .iter()
                    .filter(|(id, _)| self.site_info(id).2.as_deref() == Some(r))
                    .filter_map(|(_, s)| s.judged_to.or_else(|| s.minutes.keys().next().copied()))
                    .min()
                    .map(|from| self.background_kept_from(b).map_or(from, |k| from.max(k)));
                (r.clone(), from)
            })
            .collect()
    }

    /// The store's readings of the foreign reference station `reference` with event time after
    /// the minute `from` (a minute start): they replace every background minute from `from`
    /// on, so reading the same span again changes nothing. Sites judged against the station
    /// move on as far as its clock now lets them.
    pub fn set_background(
        &mut self,
        reference: &str,
        from: i64,
        readings: &[(String, Reading)],
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.background.contains_key(reference) {
            return out;
        }
        self.put_background(reference, from, readings);
        let Some(b) = self.background.get_mut(reference) else {
            return out;
        };
        // Minutes no site judged against it can still look up are forgotten, as a station judged
        // here forgets them.
        if let Some(keep_from) = Self::kept_from(b, self.profile.allowed_lateness_s * 1000) {
            b.minutes = b.minutes.split_off(&keep_from);
        }
        let dependents: Vec<String> = self
            .sites
            .keys()
            .filter(|id| self.site_info(id).2.as_deref() == Some(reference))
            .cloned()
            .collect();
        self.touched.extend(dependents);
        self.advance(&mut out);
        out
    }

    /// The background minutes of `reference` from the minute `from` on, rebuilt from the
    /// store's readings of that span.
    pub(super) fn put_background(
        &mut self,
        reference: &str,
        from: i64,
        readings: &[(String, Reading)],
    ) {
        // A station's clock runs no further ahead of the fleet's than a site's may: a device
        // with a fast clock neither releases the sites early nor pushes the kept minutes out.
        let ahead = (self.fleet_now != i64::MIN).then(|| self.fleet_now + AHEAD_SLACK_MS);
        let b = self.background.entry(reference.to_string()).or_default();
        b.minutes.split_off(&from);
        for (_, r) in readings
            .iter()
            .filter(|(_, r)| minute_of(r.ts.ms()) >= from)
        {
            let ts = r.ts.ms();
            b.minutes.entry(minute_of(ts)).or_default().add(r);
            b.max_ts = b.max_ts.max(ahead.map_or(ts, |a| ts.min(a)));
        }
    }

    /// The reference station `site` is judged against, if any.
    pub fn reference_of(&self, site: &str) -> Option<String> {
        self.site_info(site).2
    }

    fn background_kept_from(&self, b: &Background) -> Option<i64> {
        Self::kept_from(b, self.profile.allowed_lateness_s * 1000)
    }

    /// The oldest background minute kept: the horizon before the minute the station would be
    /// judged to here (its clock minus the allowed lateness).
    fn kept_from(b: &Background, lateness: i64) -> Option<i64> {
        (b.max_ts != i64::MIN).then(|| minute_of(b.max_ts - lateness - HORIZON_MS))
    }

    /// A reference minute for the windows of a site: the station's own when it is judged here,
    /// else its background.
    pub(super) fn reference_minute(&self, reference: &str, m: i64) -> Option<Minute> {
        match self.sites.get(reference) {
            Some(s) => s.minutes.get(&m).cloned(),
            None => self
                .background
                .get(reference)
                .and_then(|b| b.minutes.get(&m))
                .cloned(),
        }
    }

    /// How far `site` may be judged: to the station's clock minus
    /// the allowed lateness when another instance judges it, never held behind `floor` (the
    /// backfill horizon of the fleet clock). `None` when the station is not foreign.
    pub(super) fn reference_hold(&self, site: &str, floor: i64) -> Option<i64> {
        if self.background.is_empty() {
            return None;
        }
        let b = self.background.get(&self.reference_of(site)?)?;
        let lateness = self.profile.allowed_lateness_s * 1000;
        Some(b.max_ts.saturating_sub(lateness).max(floor))
    }
}
