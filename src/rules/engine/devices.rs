//! Per-device judgement on arrival: data gaps, stuck sensors, flagged readings.

use super::*;

impl Engine {
    pub(super) fn on_reading(
        &mut self,
        site: &str,
        device: &str,
        r: &Reading,
        out: &mut Vec<Output>,
    ) {
        let fault = self
            .profile
            .fault
            .as_ref()
            .map(|f| (f.stuck_readings, f.flagged_readings, f.severity));
        let gap_after = self.profile.gap.as_ref().map(|g| g.after_s * 1000);
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
        let m = minute_of(r.ts);
        // Readings older than the judged horizon are stored but cannot change a judged minute.
        if s.judged_to.is_none_or(|j| m >= j - HORIZON_MS) {
            s.minutes.entry(m).or_default().add(r);
        }
        s.max_ts = s.max_ts.max(r.ts);
        if !s.devices.contains_key(device) {
            self.devices += 1;
            s.devices.insert(
                device.to_string(),
                DeviceTrack {
                    first_ts: r.ts,
                    ..Default::default()
                },
            );
        }
        let Some(d) = s.devices.get_mut(device) else {
            return;
        };
        d.first_ts = d.first_ts.min(r.ts);
        d.last_ts = d.last_ts.max(r.ts);
        d.fleet_at_arrival = if fleet_now == i64::MIN {
            r.ts
        } else {
            fleet_now.max(d.fleet_at_arrival)
        };
        // A metric gap is a metric not reported at all; flagged values are the fault rule's.
        for metric in Metric::ALL {
            if r.get(metric).is_some() {
                let e = d.last_metric_ts.entry(metric).or_insert(r.ts);
                *e = (*e).max(r.ts);
            }
        }
        let mut transitions = Vec::new();
        // Data arrived (live or backfilled): the device's gap closes.
        if let Some(after) = gap_after {
            if std::mem::take(&mut d.gap_open) {
                transitions.extend(self.book.resolve(site, &format!("gap-{device}"), r.ts));
            }
            let (back, still): (Vec<Metric>, Vec<Metric>) =
                d.metric_gaps.drain(..).partition(|m| {
                    d.last_metric_ts
                        .get(m)
                        .is_some_and(|t| d.last_ts - t <= after)
                });
            d.metric_gaps = still;
            for metric in back {
                transitions.extend(self.book.resolve(
                    site,
                    &format!("gap-{device}-{}", metric.name()),
                    r.ts,
                ));
            }
        }
        if let Some((stuck_readings, flagged_readings, severity)) = fault {
            let mut stuck_on: Option<(Metric, f64, u32)> = None;
            for metric in [Metric::Pm25, Metric::Pm10, Metric::Tsp] {
                // A value at the range cap is flagged (T), not stuck: the flag rule reports it.
                if let Some(v) = r.valid(metric) {
                    let e = d.stuck.entry(metric).or_insert((v, 0));
                    if e.0 == v {
                        e.1 += 1;
                    } else {
                        *e = (v, 1);
                    }
                    if e.1 >= stuck_readings {
                        stuck_on = Some((metric, v, e.1));
                    }
                }
            }
            let pm_flagged = [Metric::Pm25, Metric::Pm10, Metric::Tsp]
                .into_iter()
                .any(|m| r.get(m).is_some() && r.flag(m) != Flag::N);
            d.flagged_run = if pm_flagged { d.flagged_run + 1 } else { 0 };
            let flagged_run = d.flagged_run;
            let stuck_was_open = std::mem::replace(&mut d.stuck_open, stuck_on.is_some());
            let flag_now_open = if flagged_run >= flagged_readings {
                true
            } else if flagged_run == 0 {
                false
            } else {
                d.flag_open
            };
            let flag_was_open = std::mem::replace(&mut d.flag_open, flag_now_open);
            // Alerts are raised when a fault starts and cleared when it ends; readings in between
            // change nothing (the hot path allocates nothing for them).
            match stuck_on {
                Some((metric, v, n)) if !stuck_was_open => {
                    let evidence = json!({"fault": "stuck", "device": device,
                        "metric": metric.name(), "value": v, "readings": n});
                    transitions.extend(self.book.raise(Raise {
                        site,
                        rule: &format!("stuck-{device}"),
                        kind: RuleKind::Fault,
                        severity,
                        ts: r.ts,
                        level: self.levels.at(r.ts),
                        evidence,
                    }));
                }
                None if stuck_was_open => {
                    transitions.extend(self.book.clear(site, &format!("stuck-{device}"), r.ts));
                }
                _ => {}
            }
            if flag_now_open && !flag_was_open {
                let flags: Vec<(&str, String)> = [Metric::Pm25, Metric::Pm10, Metric::Tsp]
                    .into_iter()
                    .filter(|m| r.get(*m).is_some() && r.flag(*m) != Flag::N)
                    .map(|m| (m.name(), r.flag(m).letter().to_string()))
                    .collect();
                let evidence = json!({"fault": "flag", "device": device, "flags": flags,
                    "readings": flagged_run});
                transitions.extend(self.book.raise(Raise {
                    site,
                    rule: &format!("flag-{device}"),
                    kind: RuleKind::Fault,
                    severity,
                    ts: r.ts,
                    level: self.levels.at(r.ts),
                    evidence,
                }));
            } else if !flag_now_open && flag_was_open {
                transitions.extend(self.book.clear(site, &format!("flag-{device}"), r.ts));
            }
        }
        self.record(site, transitions, out);
    }

    pub(super) fn check_gaps(&mut self, out: &mut Vec<Output>) {
        let Some(gap) = self.profile.gap.clone() else {
            return;
        };
        let now = self.gap_now;
        let after = gap.after_s * 1000;
        let level = self.levels.at(now);
        let mut raises: Vec<(String, String, Option<Metric>, String, serde_json::Value)> =
            Vec::new();
        for (site, s) in &self.sites {
            for (device, d) in &s.devices {
                if now - d.last_ts > after && now - d.fleet_at_arrival > after {
                    if d.gap_open {
                        continue;
                    }
                    raises.push((
                        site.clone(),
                        device.clone(),
                        None,
                        format!("gap-{device}"),
                        json!({"device": device, "last_ts": d.last_ts, "silent_s": (now - d.last_ts) / 1000}),
                    ));
                    continue;
                }
                if now - d.last_ts > after {
                    continue;
                }
                for metric in &gap.metrics {
                    // The device reports, but not this metric (judged on the device's own clock;
                    // never seen: counted from its first reading).
                    let last = d.last_metric_ts.get(metric).copied();
                    if d.last_ts - last.unwrap_or(d.first_ts) > after
                        && !d.metric_gaps.contains(metric)
                    {
                        raises.push((
                            site.clone(),
                            device.clone(),
                            Some(*metric),
                            format!("gap-{device}-{}", metric.name()),
                            json!({"device": device, "metric": metric.name(), "last_ts": last}),
                        ));
                    }
                }
            }
        }
        raises.sort_by(|a, b| (&a.0, &a.3).cmp(&(&b.0, &b.3)));
        for (site, device, metric, rule, evidence) in raises {
            if let Some(d) = self
                .sites
                .get_mut(&site)
                .and_then(|s| s.devices.get_mut(&device))
            {
                match metric {
                    None => d.gap_open = true,
                    Some(m) => d.metric_gaps.push(m),
                }
            }
            if self.book.is_active(&site, &rule) {
                continue;
            }
            let t = self.book.raise(Raise {
                site: &site,
                rule: &rule,
                kind: RuleKind::Gap,
                severity: gap.severity,
                ts: now,
                level,
                evidence,
            });
            self.record(&site, t.into_iter().collect(), out);
        }
    }
}
