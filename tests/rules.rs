//! The rulebook in event time: fixed timestamps, no sleeps, no wall clock. Each test drives the
//! engine with readings as a device would send them and checks the alert transitions.

#[path = "support/rules_sim.rs"]
mod rules_sim;

use dustwatch::rules::{Change, Engine, Output, Profile, RuleKind};
use dustwatch::store::Record;
use dustwatch_protocol::{Event, EventKind, EventTime, Flag, Level, Phase, Reading, SiteKind};
use rules_sim::{site, t0, Sim, MIN, QUIET};

#[test]
fn window_rule_raises_clears_and_closes_after_recheck() {
    let mut s = Sim::new();
    // One clean hour, one hour at +200 over the reference, then clean for 3 hours.
    s.run(t0(), 60, |_| QUIET);
    s.run(t0() + 60 * MIN, 60, |_| (300.0, 45.0));
    s.run(t0() + 120 * MIN, 180, |_| QUIET);
    s.run(t0() + 300 * MIN, 10, |_| QUIET);
    assert_eq!(
        s.changes("pm10-hourly"),
        vec![Change::Opened, Change::Cleared, Change::Closed]
    );
    let opened = s
        .out
        .iter()
        .find_map(|o| match o {
            Output::Alert(t) if t.change == Change::Opened && t.alert.rule == "pm10-hourly" => {
                Some(t.alert.clone())
            }
            _ => None,
        })
        .expect("opened");
    assert_eq!(opened.kind, RuleKind::Window);
    assert_eq!(opened.evidence["value"], 200.0);
    assert_eq!(opened.evidence["window_end"], t0() + 120 * MIN);
}

#[test]
fn hysteresis_does_not_flap() {
    // The shipped pm10-hourly clears at its raise limit (its source gives no band); a profile
    // with a band between clear 120 and raise 150 holds the state inside it.
    let text =
        dustwatch::rules::profile::DEFAULT_PROFILE.replacen("clear = 150.0", "clear = 120.0", 1);
    let mut s = Sim::with(Profile::parse(&text, "band.toml").expect("valid"));
    // Hourly increments alternate 160 (above raise 150) and 130 (between clear 120 and raise).
    for h in 0..8 {
        let inc = if h % 2 == 0 { 160.0 } else { 130.0 };
        s.run(t0() + h * 60 * MIN, 60, |_| (100.0 + inc, 45.0));
    }
    assert_eq!(
        s.changes("pm10-hourly"),
        vec![Change::Opened],
        "no flapping"
    );
}

#[test]
fn daily_budget_allows_the_profile_number_of_exceedances() {
    // Hebei: at most 2 hourly exceedances of +80 a day.
    let text = include_str!("../rules/hebei-db13-2934.toml");
    let mut e = Engine::new(
        Profile::parse(text, "hebei").expect("valid"),
        chrono_tz::Asia::Shanghai,
    );
    e.set_sites([
        site("s1", SiteKind::Construction, Phase::Earthwork),
        site("ref", SiteKind::Reference, Phase::Idle),
    ]);
    let mut s = Sim {
        e,
        seq: 0,
        out: Vec::new(),
    };
    // Three separate exceeding hours with clean hours between.
    for h in 0..6 {
        let pm10 = if h % 2 == 0 { 200.0 } else { 110.0 };
        s.run(t0() + h * 60 * MIN, 60, |_| (pm10, 45.0));
    }
    let changes = s.changes("pm10-increment-hourly");
    assert_eq!(
        changes.first(),
        Some(&Change::Opened),
        "third exceedance raises"
    );
    let opened_at = s
        .out
        .iter()
        .find_map(|o| match o {
            Output::Alert(t)
                if t.change == Change::Opened && t.alert.rule == "pm10-increment-hourly" =>
            {
                Some(t.alert.opened_ts.ms())
            }
            _ => None,
        })
        .expect("opened");
    // Stamped at the last instant of the window it judges.
    assert_eq!(
        opened_at,
        t0() + 5 * 60 * MIN - 1,
        "after the third exceeding hour"
    );
}

#[test]
fn level_change_in_the_middle_of_a_window_judges_each_minute_under_its_level() {
    let mut s = Sim::new();
    // Red from minute 12 of a 15-minute activity window: only 3 minutes of work at red.
    s.level(t0() + 12 * MIN, Level::Red);
    s.run(t0(), 15, |_| (110.0, 75.0));
    assert!(s.changes("work-restriction").is_empty(), "3 minutes < 5");
    // The next window is entirely at red: work is flagged with evidence.
    s.run(t0() + 15 * MIN, 15, |_| (110.0, 75.0));
    s.run(t0() + 30 * MIN, 6, |_| QUIET);
    assert_eq!(s.changes("work-restriction"), vec![Change::Opened]);
    let ev = s
        .out
        .iter()
        .find_map(|o| match o {
            Output::Alert(t) if t.alert.rule == "work-restriction" => {
                Some(t.alert.evidence.clone())
            }
            _ => None,
        })
        .expect("evidence");
    assert_eq!(ev["level"], "red");
    assert_eq!(ev["active_minutes"], 15);
    // Work stops: the condition clears.
    s.run(t0() + 36 * MIN, 25, |_| QUIET);
    assert_eq!(
        s.changes("work-restriction"),
        vec![Change::Opened, Change::Cleared]
    );
}

#[test]
fn earthwork_is_flagged_from_yellow() {
    let mut s = Sim::new();
    s.level(t0() - MIN, Level::Yellow);
    // Loud and dusty (PM10 +200 over the reference): earthwork.
    s.run(t0(), 15, |_| (300.0, 72.0));
    s.run(t0() + 15 * MIN, 10, |_| QUIET);
    assert_eq!(s.changes("earthwork-restriction"), vec![Change::Opened]);
    assert!(
        s.changes("work-restriction").is_empty(),
        "other work is allowed at yellow"
    );
}

#[test]
fn late_and_out_of_order_data_gives_the_same_answer() {
    let build = |order: &dyn Fn(Vec<Record>) -> Vec<Record>| {
        let mut s = Sim::new();
        let mut recs = Vec::new();
        for i in 0..200 {
            let pm10 = if (60..120).contains(&i) { 300.0 } else { 110.0 };
            recs.push(s.reading("s1", t0() + (i + 1) * MIN, pm10, 45.0));
            recs.push(s.reading("ref", t0() + (i + 1) * MIN, 100.0, 45.0));
        }
        for chunk in order(recs).chunks(7) {
            let out = s.e.process(chunk);
            s.out.extend(out);
        }
        s.changes("pm10-hourly")
    };
    let in_order = build(&|r| r);
    // Swap neighbours within 4 minutes: late by less than the allowed lateness.
    let shuffled = build(&|mut r: Vec<Record>| {
        for i in (0..r.len().saturating_sub(8)).step_by(8) {
            r.swap(i, i + 7);
        }
        r
    });
    assert_eq!(in_order, vec![Change::Opened, Change::Cleared]);
    assert_eq!(shuffled, in_order);
}

#[test]
fn data_gap_opens_and_backfill_closes_it() {
    let mut s = Sim::new();
    let other = |s: &mut Sim, ts: i64| {
        let r = s.reading("s2", ts, 110.0, 45.0);
        let out = s.e.process(&[r]);
        s.out.extend(out);
    };
    for i in 0..10 {
        s.minute(t0() + (i + 1) * MIN, 110.0, 45.0);
        other(&mut s, t0() + (i + 1) * MIN);
    }
    // s1 goes silent for an hour while the reference and s2 keep reporting.
    for i in 10..70 {
        let r = s.reading("ref", t0() + (i + 1) * MIN, 100.0, 45.0);
        let out = s.e.process(&[r]);
        s.out.extend(out);
        other(&mut s, t0() + (i + 1) * MIN);
    }
    assert_eq!(
        s.changes("gap-d1"),
        vec![Change::Opened],
        "only s1 went silent"
    );
    // The device backfills the missing hour, oldest first.
    for i in 10..70 {
        let r = s.reading("s1", t0() + (i + 1) * MIN, 110.0, 45.0);
        let out = s.e.process(&[r]);
        s.out.extend(out);
    }
    let s1_gap: Vec<Change> = s
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Alert(t) if t.alert.site == "s1" && t.alert.rule == "gap-d1" => Some(t.change),
            _ => None,
        })
        .collect();
    assert_eq!(
        s1_gap,
        vec![Change::Opened, Change::Cleared, Change::Closed]
    );
}

#[test]
fn sprinkling_is_judged_at_the_local_day_boundary() {
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    // One sprinkling run on 2017-01-05 (local).
    let out = s.e.process(&[Record::Event {
        site: "s1".into(),
        device: "d1".into(),
        event: Event {
            ts: EventTime(t0() + 30 * MIN),
            seq: 999_999,
            boot: 1,
            kind: EventKind::SprinklerOn,
        },
    }]);
    s.out.extend(out);
    // Local midnight Asia/Shanghai is 16:00 UTC: run to 15:59 UTC, nothing judged yet.
    s.run(t0(), 16 * 60 - 1, |_| QUIET);
    assert!(s.changes("sprinkling").is_empty());
    // Past local midnight (+ lateness): the day closes with 1 run < 2.
    s.run(t0() + (16 * 60 - 1) * MIN, 10, |_| QUIET);
    assert_eq!(s.changes("sprinkling"), vec![Change::Opened]);
    let closed_day = s.out.iter().find_map(|o| match o {
        Output::DayClosed(d) if d.site == "s1" => Some(d.clone()),
        _ => None,
    });
    let d = closed_day.expect("the local day closed");
    assert_eq!(d.date.to_string(), "2017-01-05");
    assert_eq!(d.sprinkling_runs, 1);
}

#[test]
fn noise_night_limit_applies_after_22_local() {
    let mut s = Sim::new();
    // 22:00 local = 14:00 UTC. 60 dB(A) is fine by day (70) and too loud at night (55).
    let night = t0() + 14 * 60 * MIN;
    s.run(night - 60 * MIN, 60, |_| (110.0, 60.0));
    assert!(
        s.changes("noise").is_empty(),
        "60 dB(A) by day is within 70"
    );
    s.run(night, 40, |_| (110.0, 60.0));
    assert_eq!(s.changes("noise").first(), Some(&Change::Opened));
    assert_eq!(
        s.changes("night-activity"),
        Vec::<Change>::new(),
        "60 < 65: not work"
    );
    s.run(night + 40 * MIN, 40, |_| (110.0, 40.0));
    assert_eq!(s.changes("noise"), vec![Change::Opened, Change::Cleared]);
}

#[test]
fn night_work_goes_on_the_patrol_list() {
    let mut s = Sim::new();
    let night = t0() + 14 * 60 * MIN; // 22:00 local
    s.run(night, 15, |_| (110.0, 75.0));
    s.run(night + 15 * MIN, 6, |_| QUIET);
    assert_eq!(s.changes("night-activity"), vec![Change::Opened]);
    s.run(night + 21 * MIN, 20, |_| QUIET);
    assert_eq!(
        s.changes("night-activity"),
        vec![Change::Opened, Change::Cleared]
    );
}

#[test]
fn stuck_sensor_and_bad_flags_are_faults() {
    let mut s = Sim::new();
    s.run(t0(), 25, |_| (123.0, 45.0));
    assert_eq!(s.changes("stuck-d1"), vec![Change::Opened]);
    s.run(t0() + 25 * MIN, 1, |_| (124.0, 45.0));
    assert_eq!(s.changes("stuck-d1"), vec![Change::Opened, Change::Cleared]);

    let mut s = Sim::new();
    for i in 0..5 {
        s.seq += 1;
        let mut r = Reading {
            ts: EventTime(t0() + (i + 1) * MIN),
            seq: s.seq,
            boot: 1,
            interval_s: 60,
            pm10: Some(100.0 + i as f64),
            ..Default::default()
        };
        r.flags.insert("pm10".into(), Flag::D);
        let out = s.e.process(&[Record::Reading {
            site: "s1".into(),
            device: "d1".into(),
            reading: r,
        }]);
        s.out.extend(out);
    }
    assert_eq!(s.changes("flag-d1"), vec![Change::Opened]);
}

#[test]
fn repeated_offences_escalate() {
    let mut s = Sim::new();
    // Exceed, clear, exceed again during the re-check: the same alert, escalated.
    s.run(t0(), 60, |_| (300.0, 45.0));
    s.run(t0() + 60 * MIN, 60, |_| QUIET);
    s.run(t0() + 120 * MIN, 70, |_| (300.0, 45.0));
    let alerts: Vec<_> = s
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Alert(t) if t.alert.rule == "pm10-hourly" => Some(t.clone()),
            _ => None,
        })
        .collect();
    let changes: Vec<Change> = alerts.iter().map(|t| t.change).collect();
    assert_eq!(
        changes,
        vec![Change::Opened, Change::Cleared, Change::Reactivated]
    );
    assert_eq!(alerts[0].alert.id, alerts[2].alert.id);
    assert!(alerts[2].alert.severity > alerts[0].alert.severity);
}

#[test]
fn restart_mid_day_keeps_the_day_figures() {
    let sprinkle = |seq: u64, ts: i64| Record::Event {
        site: "s1".into(),
        device: "d1".into(),
        event: Event {
            ts: EventTime(ts),
            seq,
            boot: 1,
            kind: EventKind::SprinklerOn,
        },
    };
    // Morning: yellow, one sprinkling run, then the aggregator stops.
    let mut s = Sim::new();
    s.level(t0() - 10 * MIN, Level::Yellow);
    let out = s.e.process(&[sprinkle(900_001, t0() + 30 * MIN)]);
    s.out.extend(out);
    s.run(t0(), 240, |_| QUIET);
    let saved = s.e.open_days();
    let before = saved
        .iter()
        .find(|d| d.site == "s1")
        .expect("s1's day is open")
        .clone();
    assert_eq!(before.sprinkling_runs, 1);

    // A new engine continues the day from the saved figures; the second run comes after.
    let mut s2 = Sim::new();
    s2.e.seed_days(saved);
    s2.level(t0() - 10 * MIN, Level::Yellow);
    let out = s2.e.process(&[sprinkle(900_002, t0() + 6 * 60 * MIN)]);
    s2.out.extend(out);
    s2.run(t0() + 240 * MIN, 16 * 60 - 240 + 10, |_| QUIET);
    let day = s2
        .out
        .iter()
        .find_map(|o| match o {
            Output::DayClosed(d) if d.site == "s1" => Some(d.clone()),
            _ => None,
        })
        .expect("the day closed");
    assert_eq!(
        day.sprinkling_runs, 2,
        "one run before the restart, one after"
    );
    assert!(day.data_minutes > before.data_minutes);
    assert!(s2.changes("sprinkling").is_empty(), "two runs: compliant");
}
