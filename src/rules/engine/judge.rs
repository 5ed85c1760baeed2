//! One minute of one site: its day's figures, then every rule kind's verdict on it.

use super::*;

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn judge_minute(
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
    pub(super) fn judge_minute_rules(
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
        let act = &self.profile.activity;
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
        let in_night = self
            .profile
            .night
            .as_ref()
            .is_some_and(|n| n.hours.contains(self.local_time_of_day(m)));
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
                        severity: n.severity,
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
            if let Some(e) = minute.noise_energy() {
                s.noise.energy += e;
                s.noise.minutes += 1;
            }
            if end % (rule.window_min * 60_000) == 0 {
                let acc = std::mem::take(&mut s.noise);
                if acc.minutes * 2 >= rule.window_min {
                    let leq = 10.0 * (acc.energy / acc.minutes as f64).log10();
                    let start = end - rule.window_min * 60_000;
                    let is_day = rule.daytime.contains(self.local_time_of_day(start));
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
}
