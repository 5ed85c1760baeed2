//! Each device of a site: its clock on arrival, and its gap and fault rules (`rules::kinds::
//! {data_gap, device_fault}`) fed from it.

use super::*;
use crate::rules::kinds::{data_gap, device_fault};

impl Engine {
    /// A reading arrived: its minute, its device's clock, and the device's gap and fault rules.
    pub(super) fn on_reading(
        &mut self,
        site: &str,
        device: &str,
        r: &Reading,
        out: &mut Vec<Output>,
    ) {
        let fleet_now = self.gap_now;
        if !self.touched.contains(site) {
            self.touched.insert(site.to_string());
        }
        self.readings_since_clock += 1;
        if !self.sites.contains_key(site) {
            self.sites.insert(site.to_string(), SiteState::default());
        }
        let Some(s) = self.sites.get_mut(site) else {
            return;
        };
        let m = minute_of(r.ts.ms());
        // Readings older than the judged horizon are stored but cannot change a judged minute.
        if s.judged_to.is_none_or(|j| m >= j - HORIZON_MS) {
            s.minutes.entry(m).or_default().add(r);
        }
        s.max_ts = s.max_ts.max(r.ts.ms());
        if !s.devices.contains_key(device) {
            self.devices += 1;
            let mut track = DeviceTrack::default();
            track.clock.first_ts = r.ts.ms();
            s.devices.insert(device.to_string(), track);
        }
        let Some(track) = s.devices.get_mut(device) else {
            return;
        };
        let d = &mut track.clock;
        d.first_ts = d.first_ts.min(r.ts.ms());
        d.last_ts = d.last_ts.max(r.ts.ms());
        d.fleet_at_arrival = if fleet_now == i64::MIN {
            r.ts.ms()
        } else {
            fleet_now.max(d.fleet_at_arrival)
        };
        // A metric gap is a metric not reported at all; flagged values are the fault rule's.
        for metric in Metric::ALL {
            if r.get(metric).is_some() {
                let e = d.last_metric_ts.entry(metric).or_insert(r.ts.ms());
                *e = (*e).max(r.ts.ms());
            }
        }
        let mut decisions = Vec::new();
        if let Some(rule) = &self.profile.gap {
            decisions.extend(data_gap::on_arrival(
                rule,
                &track.clock,
                &mut track.gaps,
                device,
                r.ts.ms(),
            ));
        }
        if let Some(rule) = &self.profile.fault {
            decisions.extend(device_fault::on_reading(
                rule,
                &mut track.fault,
                device,
                r,
                &self.levels,
            ));
        }
        let mut transitions = Vec::new();
        for d in decisions {
            d.apply(&mut self.book, site, &mut transitions);
        }
        self.record(site, transitions, out);
    }

    /// Gaps that open at the sweep, in (site, rule) order.
    pub(super) fn check_gaps(&mut self, out: &mut Vec<Output>) {
        let Some(gap) = self.profile.gap.clone() else {
            return;
        };
        let now = self.gap_now;
        let level = self.levels.at(now);
        let mut openings: Vec<(String, String, data_gap::Opening)> = Vec::new();
        for (site, s) in &self.sites {
            for (device, d) in &s.devices {
                for o in data_gap::openings(&gap, &d.clock, &d.gaps, device, now) {
                    openings.push((site.clone(), device.clone(), o));
                }
            }
        }
        openings.sort_by(|a, b| (&a.0, &a.2.rule).cmp(&(&b.0, &b.2.rule)));
        for (site, device, o) in openings {
            let Some(d) = self
                .sites
                .get_mut(&site)
                .and_then(|s| s.devices.get_mut(&device))
            else {
                continue;
            };
            let active = self.book.is_active(&site, &o.rule);
            let decision = data_gap::open(&gap, o, &mut d.gaps, now, level);
            if active {
                continue;
            }
            let mut transitions = Vec::new();
            decision.apply(&mut self.book, &site, &mut transitions);
            self.record(&site, transitions, out);
        }
    }
}
