//! Verdicts the office acts on, in event time: the allowance per local day, alerts stamped within
//! the day they judge, re-inspection, levels per minute, sprinkling per site, coverage.

#[path = "support/rules_sim.rs"]
mod rules_sim;

use dustwatch::rules::{Change, DayStats, Profile, Reason};
use dustwatch_protocol::Level;
use rules_sim::{hebei, midnight, t0, Sim, HOUR, MIN, QUIET};

/// Clean minutes that vary a little (a constant value would be a stuck sensor).
fn quiet(i: i64) -> (f64, f64) {
    (QUIET.0 + (i % 3) as f64, QUIET.1)
}

/// Hours from `from` where the site is +100 over the reference (exceeding Hebei's +80) when
/// `exceed(h)` is true, clean otherwise.
fn hebei_hours(s: &mut Sim, from: i64, hours: i64, exceed: impl Fn(i64) -> bool) {
    for h in 0..hours {
        let pm10 = if exceed(h) { 200.0 } else { 110.0 };
        s.run(from + h * HOUR, 60, |i| (pm10 + (i % 3) as f64, 45.0));
    }
}

#[test]
fn daily_allowance_starts_again_each_local_day() {
    let mut s = Sim::with(hebei());
    // Day one (08:00-24:00 local): two exceeding hours, within the allowance of two.
    hebei_hours(&mut s, t0(), 16, |h| h == 1 || h == 3);
    // Day two from local midnight (16:00 UTC): two more, again within that day's allowance.
    hebei_hours(&mut s, midnight(), 5, |h| h == 1 || h == 3);
    assert!(
        s.changes("pm10-increment-hourly").is_empty(),
        "two exceedances a day are allowed on each day"
    );
    // A third exceedance on day two is one too many.
    hebei_hours(&mut s, midnight() + 5 * HOUR, 2, |h| h == 0);
    let t = s.transitions("pm10-increment-hourly");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened));
    let opened = &t[0].1;
    assert_eq!(opened.evidence["exceedances_today"], 3);
    assert!(opened.opened_ts.ms() > midnight() && opened.opened_ts.ms() <= midnight() + 6 * HOUR);
}

#[test]
fn sprinkling_alert_lands_in_the_day_it_judges_and_counts_once() {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    // No sprinkling at all on 2017-01-05; run past local midnight into the next day.
    s.run(t0(), 16 * 60 + 30, quiet);
    let t = s.transitions("sprinkling");
    assert_eq!(t.len(), 1, "{t:?}");
    let day_end = midnight();
    assert!(
        t[0].1.opened_ts.ms() < day_end && t[0].1.opened_ts.ms() >= day_end - MIN,
        "stamped at the last instant of the day it judges, got {} (midnight {day_end})",
        t[0].1.opened_ts.ms()
    );
    // The rest of the day (16:30 UTC -> 24h later) so the next day closes too.
    s.run(t0() + (16 * 60 + 30) * MIN, 24 * 60, quiet);
    let days = s.closed_days();
    let opened: Vec<(String, u32)> = days
        .iter()
        .map(|d| (d.date.to_string(), d.alerts_opened))
        .collect();
    assert_eq!(
        opened[..2],
        [("2017-01-05".to_string(), 1), ("2017-01-06".to_string(), 0)],
        "the alert counts once, in the day it judges"
    );
}

#[test]
fn window_ending_at_local_midnight_belongs_to_the_day_before() {
    let mut s = Sim::new();
    // 23:00-24:00 local (15:00-16:00 UTC) at +200 over the reference: pm10-hourly exceeds.
    s.run(t0(), 15 * 60, quiet);
    s.run(t0() + 15 * HOUR, 60, |i| (300.0 + (i % 3) as f64, 45.0));
    s.run(midnight(), 30, quiet);
    let t = s.transitions("pm10-hourly");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened));
    assert_eq!(t[0].1.evidence["window_end"], midnight());
    assert!(
        t[0].1.opened_ts.ms() < midnight(),
        "stamped within 2017-01-05"
    );
    let day = s.closed_days();
    assert_eq!(day[0].date.to_string(), "2017-01-05");
    assert_eq!(day[0].alerts_opened, 1, "counted in the day it judges");
    let next = s.e.open_days();
    let next = next
        .iter()
        .find(|d| d.site == "s1")
        .expect("s1's next day is open");
    assert_eq!(next.alerts_opened, 0, "and not again in the next day");
}

#[test]
fn work_under_the_raise_threshold_during_recheck_keeps_the_alert_open() {
    let mut s = Sim::new();
    s.level(t0() - MIN, Level::Red);
    // A quarter hour of work at red: the work restriction alert opens.
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    // Two quiet quarters: the condition clears and the re-check period starts.
    s.run(t0() + 15 * MIN, 30, quiet);
    assert_eq!(
        s.changes("work-restriction"),
        vec![Change::Opened, Change::Cleared]
    );
    // For the next 4 hours the site works 3 minutes every quarter hour (below the 5 that raise).
    for q in 0..16 {
        let from = t0() + 45 * MIN + q * 15 * MIN;
        s.run(from, 15, |i| if i < 3 { (111.0, 75.0) } else { quiet(i) });
    }
    assert_eq!(
        s.changes("work-restriction"),
        vec![Change::Opened, Change::Cleared],
        "every quarter with work restarts the re-check: the alert stays open"
    );
    // The site really stops: after the re-check period of clean windows the alert closes.
    let last_unclean_end = t0() + 45 * MIN + 16 * 15 * MIN;
    s.run(last_unclean_end, 2 * 60 + 30, quiet);
    let t = s.transitions("work-restriction");
    assert_eq!(t.last().map(|(c, _)| *c), Some(Change::Closed));
    let closed_ts = t
        .last()
        .and_then(|(_, a)| a.closed_ts)
        .expect("closed")
        .ms();
    assert!(
        closed_ts >= last_unclean_end - 1 + 2 * HOUR,
        "closed only 2 h after the last unclean window"
    );
}

#[test]
fn a_minute_is_judged_under_the_level_in_force_during_it() {
    let mut s = Sim::new();
    // Red from minute 11 of the quarter hour: minutes 11-14 are worked at red, 4 < 5.
    s.level(t0() + 11 * MIN, Level::Red);
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 10, quiet);
    assert!(
        s.changes("work-restriction").is_empty(),
        "the minute before the change is judged under the old level"
    );
}

#[test]
fn a_level_entered_late_judges_the_minutes_it_covers_again() {
    let mut s = Sim::new();
    // A quarter hour of work with no level known, judged as allowed.
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 15, quiet);
    assert!(s.changes("work-restriction").is_empty());
    // The office enters the red level that was in force since t0, half an hour late.
    s.level(t0(), Level::Red);
    let t = s.transitions("work-restriction");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened), "{t:?}");
    let a = &t[0].1;
    assert_eq!(
        a.opened_ts.ms(),
        t0() + 15 * MIN - 1,
        "stamped in the window it judges"
    );
    assert_eq!(a.evidence["active_minutes"], 15);
    assert_eq!(a.level, Level::Red);
}

/// Yellow all day, the given sprinkling runs, data from 08:00 local past midnight; the judged
/// day's figures and the sprinkling alert's changes.
fn sprinkling_day(runs: &[(&str, i64, i64)]) -> (DayStats, Vec<Change>) {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    for (device, on, off) in runs {
        s.sprinkle(device, *on, *off);
    }
    s.run(t0(), 16 * 60 + 10, quiet);
    let day = s.closed_days().into_iter().next().expect("the day closed");
    (day, s.changes("sprinkling"))
}

#[test]
fn one_run_seen_by_two_monitors_counts_once() {
    let (day, changes) = sprinkling_day(&[
        ("d1", t0() + 60 * MIN, t0() + 90 * MIN),
        ("d2", t0() + 61 * MIN, t0() + 91 * MIN),
    ]);
    assert_eq!(day.sprinkling_runs, 1);
    assert_eq!(changes, vec![Change::Opened], "one run of two required");
}

#[test]
fn a_run_shorter_than_the_minimum_does_not_count() {
    let (day, changes) = sprinkling_day(&[
        ("d1", t0() + 60 * MIN, t0() + 61 * MIN),
        ("d1", t0() + 300 * MIN, t0() + 330 * MIN),
    ]);
    assert_eq!(day.sprinkling_runs, 1, "a one-minute blip is not a run");
    assert_eq!(changes, vec![Change::Opened]);
    let (day, changes) = sprinkling_day(&[
        ("d1", t0() + 60 * MIN, t0() + 70 * MIN),
        ("d1", t0() + 300 * MIN, t0() + 330 * MIN),
    ]);
    assert_eq!(day.sprinkling_runs, 2);
    assert!(changes.is_empty());
}

#[test]
fn a_day_with_too_little_data_is_not_judged_and_says_so() {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    // The monitor comes online at 23:50 local: ten minutes of data in the day, no sprinkling.
    s.run(midnight() - 10 * MIN, 20, quiet);
    assert!(s.changes("sprinkling").is_empty(), "not judged: no alert");
    let day = s.closed_days().into_iter().next().expect("the day closed");
    let nj = day
        .not_judged
        .iter()
        .find(|n| n.rule == "sprinkling")
        .expect("the day says sprinkling was not judged");
    assert_eq!(
        nj.reason,
        Reason::TooLittleData {
            data_minutes: 10,
            needed_minutes: 720
        }
    );
    assert!(nj.text.contains("too little data"), "{}", nj.text);
}

/// Only the site reports: its reference station is silent.
fn site_only(s: &mut Sim, from: i64, n: i64, pm10: f64) {
    for i in 0..n {
        let r = s.reading("s1", from + (i + 1) * MIN, pm10 + (i % 3) as f64, 45.0);
        s.feed(&[r]);
    }
}

#[test]
fn increment_rule_without_reference_data_says_it_did_not_judge() {
    let mut s = Sim::new();
    site_only(&mut s, t0(), 130, 300.0);
    assert!(
        s.changes("pm10-hourly").is_empty(),
        "no reference: no verdict either way"
    );
    let days = s.e.open_days();
    let day = days.iter().find(|d| d.site == "s1").expect("s1's day");
    let nj = day
        .not_judged
        .iter()
        .find(|n| n.rule == "pm10-hourly")
        .expect("pm10-hourly is listed as not judged");
    assert_eq!(
        nj.reason,
        Reason::ReferenceMissing {
            reference: "ref".into()
        }
    );
    assert_eq!(nj.minutes, 120, "two hourly windows");
    assert!(day.not_judged_minutes >= 120);
    assert!(nj.text.contains("reference station ref"), "{}", nj.text);
}

#[test]
fn increment_rule_can_fall_back_to_an_absolute_limit() {
    let text = dustwatch::rules::profile::DEFAULT_PROFILE.replacen(
        "clear = 150.0\n",
        "clear = 150.0\nfallback_raise = 250.0\nfallback_clear = 200.0\n",
        1,
    );
    let mut s = Sim::with(Profile::parse(&text, "fallback.toml").expect("valid"));
    site_only(&mut s, t0(), 130, 300.0);
    let t = s.transitions("pm10-hourly");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened));
    let ev = &t[0].1.evidence;
    assert_eq!(ev["limit"], 250.0);
    assert!(
        ev["fallback"]
            .as_str()
            .is_some_and(|f| f.contains("reference station ref")),
        "{ev}"
    );
}

#[test]
fn what_was_not_judged_is_shown_through_the_rules_handle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = Sim::new();
    let (handle, thread) = dustwatch::rules::task::start(
        rules_sim::engine_with(Profile::default_profile()),
        dir.path(),
        None,
        None,
        4,
    )
    .expect("rules task starts");
    let mut sink = handle.batch_sink();
    for i in 0..130 {
        let r = s.reading("s1", t0() + (i + 1) * MIN, 300.0 + (i % 3) as f64, 45.0);
        sink(vec![r]);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let days = rt.block_on(handle.days()).expect("engine answers");
    let day = days.iter().find(|d| d.site == "s1").expect("s1's day");
    assert!(
        day.not_judged
            .iter()
            .any(|n| n.rule == "pm10-hourly" && n.text.contains("reference station ref")),
        "{:?}",
        day.not_judged
    );
    drop(sink);
    drop(handle);
    thread.join().expect("rules thread ends");
}

#[test]
fn a_dust_burst_without_noise_is_work_when_the_profile_says_so() {
    let text = dustwatch::rules::profile::DEFAULT_PROFILE.replace(
        "noise_dba = 65.0\n",
        "noise_dba = 65.0\ndust_pm10_increment = 200.0\n",
    );
    let mut s = Sim::with(Profile::parse(&text, "dust.toml").expect("valid"));
    s.level(t0() - MIN, Level::Red);
    // Quiet (45 dB(A)) but +250 over the reference for a quarter hour: loading, digging.
    s.run(t0(), 15, |i| (350.0 + (i % 3) as f64, 45.0));
    s.run(t0() + 15 * MIN, 10, quiet);
    assert_eq!(s.changes("work-restriction"), vec![Change::Opened]);
    // Without the setting, noise alone is work: the same burst is not.
    let mut s = Sim::new();
    s.level(t0() - MIN, Level::Red);
    s.run(t0(), 15, |i| (350.0 + (i % 3) as f64, 45.0));
    s.run(t0() + 15 * MIN, 10, quiet);
    assert!(s.changes("work-restriction").is_empty());
}

#[test]
fn a_sprinkling_run_is_never_forbidden_work() {
    let mut s = Sim::new();
    s.level(t0() - MIN, Level::Red);
    // A fog cannon runs for the whole quarter hour at 75 dB(A): required, not work.
    s.sprinkle("d1", t0(), t0() + 15 * MIN);
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 10, quiet);
    assert!(s.changes("work-restriction").is_empty());
    // The same noise after the run is work at red.
    s.run(t0() + 25 * MIN, 20, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 45 * MIN, 10, quiet);
    assert_eq!(s.changes("work-restriction"), vec![Change::Opened]);
}

#[test]
fn tsp_is_judged_hourly_with_shaanxis_earthwork_limit() {
    let mut s = Sim::new();
    // s1 is in its earthwork phase: TSP hourly mean 900 ug/m3 (0.9 mg/m3) is over 0.8.
    s.run(t0(), 60, |i| (750.0 + (i % 3) as f64, 45.0));
    s.run(t0() + HOUR, 10, quiet);
    let t = s.transitions("tsp-hourly");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened), "{t:?}");
    assert_eq!(t[0].1.evidence["limit"], 800.0);
    assert_eq!(t[0].1.evidence["window_min"], 60);
    // A quarter hour of dust in an otherwise clean hour is not an hourly exceedance.
    let mut s = Sim::new();
    s.run(t0(), 15, |i| (1000.0 + (i % 3) as f64, 45.0));
    s.run(t0() + 15 * MIN, 55, quiet);
    assert!(s.changes("tsp-hourly").is_empty());
}

#[test]
fn earthwork_under_the_mist_is_still_earthwork() {
    let mut s = Sim::new();
    s.level(t0() - MIN, Level::Yellow);
    // Digging (+200 over the reference, loud) while the fog cannon runs: the dust says work.
    s.sprinkle("d1", t0(), t0() + 15 * MIN);
    s.run(t0(), 15, |i| (300.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 10, quiet);
    assert_eq!(s.changes("earthwork-restriction"), vec![Change::Opened]);
}

#[test]
fn a_sprinkling_event_after_its_day_closed_judges_the_day_again() {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    // One run in the morning; the day (2017-01-05 local) closes with one run of two.
    s.sprinkle("d1", t0() + 60 * MIN, t0() + 90 * MIN);
    s.run(t0(), 16 * 60 + 10, quiet);
    assert_eq!(s.changes("sprinkling"), vec![Change::Opened]);
    // The evening run of a monitor that was offline arrives ten minutes after the day closed.
    s.sprinkle("d2", t0() + 13 * HOUR, t0() + 13 * HOUR + 30 * MIN);
    let t = s.transitions("sprinkling");
    assert_eq!(
        t.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![Change::Opened, Change::Closed],
        "the day had its two runs after all"
    );
    let closed = &t[1].1;
    let why = closed.evidence["withdrawn"].as_str().unwrap_or_default();
    assert!(why.contains("2 runs"), "{why}");
    assert!(closed.closed_ts.is_some_and(|c| c.ms() < midnight()));
    let day = s.closed_days().into_iter().next().expect("the day closed");
    assert_eq!(
        (day.sprinkling_runs, day.alerts_opened, day.alerts_closed),
        (2, 1, 1)
    );
}

#[test]
fn a_late_lower_level_withdraws_the_alerts_it_no_longer_supports() {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Red);
    // A quarter hour of work under red, then quiet: the work-restriction alert opens.
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 15, quiet);
    assert_eq!(s.changes("work-restriction"), vec![Change::Opened]);
    // The office corrects the record half an hour late: from t0 the level was yellow, where
    // work is allowed.
    s.level(t0(), Level::Yellow);
    let t = s.transitions("work-restriction");
    assert_eq!(
        t.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![Change::Opened, Change::Closed],
        "{t:?}"
    );
    let why = t[1].1.evidence["withdrawn"].as_str().unwrap_or_default();
    assert!(why.contains("yellow"), "{why}");
    // A correction that still leaves the window forbidden withdraws nothing.
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Red);
    s.run(t0(), 15, |i| (110.0 + (i % 3) as f64, 75.0));
    s.run(t0() + 15 * MIN, 15, quiet);
    s.level(t0() + 20 * MIN, Level::Yellow);
    assert_eq!(s.changes("work-restriction"), vec![Change::Opened]);
}
