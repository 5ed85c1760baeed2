//! A site whose reference station another engine judges (its partition is held elsewhere): the
//! station's readings arrive later, read from the store, as background minutes. They are never
//! judged here, the site waits for them (up to the backfill horizon) and then decides what one
//! engine fed everything in one stream decides.

#[path = "support/rules_sim.rs"]
mod rules_sim;

use dustwatch::rules::engine::StationHistory;
use dustwatch::rules::{Change, Engine, Output, Profile, Reason, SiteHistory, Takeover};
use dustwatch::store::Record;
use dustwatch_protocol::Reading;
use rules_sim::{changes, decided_by_one, records, t0, Sim, MIN};

/// The records of `site` only.
fn of(site: &str, batch: &[Record]) -> Vec<Record> {
    batch
        .iter()
        .filter(|r| matches!(r, Record::Reading { site: s, .. } if s == site))
        .cloned()
        .collect()
}

/// The readings of `ref` as the store holds them.
fn stored(batches: &[Vec<Record>]) -> Vec<(String, Reading)> {
    batches
        .iter()
        .flatten()
        .filter_map(|r| match r {
            Record::Reading {
                site,
                device,
                reading,
            } if site == "ref" => Some((device.clone(), reading.clone())),
            _ => None,
        })
        .collect()
}

/// What a poll of the store gives the engine: `ref`'s stored readings from the minute it asks.
fn poll(e: &mut Engine, store: &[(String, Reading)]) -> Vec<Output> {
    let mut out = Vec::new();
    for (reference, from) in e.background_wanted() {
        assert_eq!(reference, "ref");
        if let Some(from) = from {
            let readings: Vec<_> = store
                .iter()
                .filter(|(_, r)| r.ts.ms() > from)
                .cloned()
                .collect();
            out.extend(e.set_background(&reference, from, &readings));
        }
    }
    out
}

/// An engine judging `s1` only; `ref` is judged elsewhere.
fn split_engine(profile: Profile) -> Engine {
    let mut e = Sim::with(profile).e;
    e.set_foreign_references(&|s: &str| s != "ref");
    e
}

fn judged_to(e: &Engine, site: &str) -> Option<i64> {
    e.progress().find(|(s, _)| *s == site).map(|(_, j)| j)
}

#[test]
fn a_site_waits_for_its_foreign_reference_and_decides_what_one_engine_decides() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 300);
    let expected = decided_by_one(&all);
    assert!(
        expected
            .iter()
            .any(|c| c.1 == "pm10-hourly" && c.2 == Change::Opened),
        "the breach opens an increment alert: {expected:?}"
    );

    // The reference's readings reach the store a quarter of an hour behind the site's, in
    // polls every few minutes.
    let mut e = split_engine(Profile::default_profile());
    let mut got = Vec::new();
    for (i, batch) in all.iter().enumerate() {
        got.extend(e.process(&of("s1", batch)));
        if i % 4 == 0 {
            got.extend(poll(&mut e, &stored(&all[..i.saturating_sub(15)])));
        }
    }
    got.extend(poll(&mut e, &stored(&all)));
    assert_eq!(changes(&got), expected);

    // The reference is background only: nothing of it is judged, counted or reported here.
    assert!(got.iter().all(|o| match o {
        Output::Alert(t) => t.alert.site == "s1",
        Output::DayClosed(d) => d.site == "s1",
        Output::ReportDue(_) => true,
    }));
    assert_eq!(judged_to(&e, "ref"), None);
    assert!(e.open_days().iter().all(|d| d.site == "s1"));
    let reference_missing = e.open_days().iter().any(|d| {
        d.not_judged
            .iter()
            .any(|n| matches!(n.reason, Reason::ReferenceMissing { .. }))
    });
    assert!(!reference_missing, "{:?}", e.open_days());
}

#[test]
fn a_site_is_held_at_its_foreign_reference_s_clock() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 90);
    let mut e = split_engine(Profile::default_profile());
    for batch in &all {
        e.process(&of("s1", batch));
    }
    assert_eq!(poll(&mut e, &[]).len(), 0);
    assert_eq!(
        judged_to(&e, "s1"),
        None,
        "nothing judged without the reference"
    );

    // The reference reached minute 40: the site is judged to 40 minus the allowed lateness.
    poll(&mut e, &stored(&all[..40]));
    let lateness = Profile::default_profile().allowed_lateness_s * 1000;
    assert_eq!(judged_to(&e, "s1"), Some(t0() + 40 * MIN - lateness));

    // Once it caught up, the site's own clock is the limit again.
    poll(&mut e, &stored(&all));
    assert_eq!(judged_to(&e, "s1"), Some(t0() + 90 * MIN - lateness));
}

#[test]
fn a_silent_foreign_reference_holds_the_site_no_longer_than_the_backfill_horizon() {
    let mut profile = Profile::default_profile();
    profile.max_backfill_s = 30 * 60;
    let lateness = profile.allowed_lateness_s * 1000;
    let mut sim = Sim::new();
    let all = records(&mut sim, 180);
    let mut e = split_engine(profile);
    for batch in &all {
        e.process(&of("s1", batch));
        poll(&mut e, &[]);
    }
    // The fleet clock (the site's, less the lateness) minus the backfill horizon.
    let floor = t0() + 180 * MIN - lateness - 30 * MIN;
    let judged = judged_to(&e, "s1").expect("the site is judged");
    assert!(judged >= floor - MIN, "judged to {judged}, floor {floor}");
    let said = e.open_days().iter().any(|d| {
        d.site == "s1" && d.not_judged.iter().any(|n| {
            n.rule == "pm10-hourly"
                && matches!(&n.reason, Reason::ReferenceMissing { reference } if reference == "ref")
        })
    });
    assert!(
        said,
        "the day says the reference is missing: {:?}",
        e.open_days()
    );
}

#[test]
fn a_site_taken_over_gets_its_foreign_reference_s_history_too() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 300);
    let expected = decided_by_one(&all);

    // Stopped inside the breach's first hourly window, which the new engine closes from what
    // the replay accumulated (the reference's minutes too); it holds `s1` only, like the old.
    let stop = 50;
    let mut old = split_engine(Profile::default_profile());
    let mut got = Vec::new();
    for batch in &all[..stop] {
        got.extend(old.process(&of("s1", batch)));
        got.extend(poll(&mut old, &stored(&all[..stop])));
    }
    let mut new = Sim::new().e;
    let judged = judged_to(&old, "s1").expect("judged half-way");
    let from = new.replay_from(judged);
    let history = SiteHistory {
        site: "s1".into(),
        readings: all[..stop]
            .iter()
            .flat_map(|b| of("s1", b))
            .filter_map(|r| match r {
                Record::Reading {
                    device, reading, ..
                } if reading.ts.ms() >= from => Some((device, reading)),
                _ => None,
            })
            .collect(),
        judged_to: Some(judged),
        ..Default::default()
    };
    let station = (from - 1).div_euclid(MIN) * MIN;
    new.adopt_sites(Takeover {
        sites: vec![history],
        open: old.book().open_alerts().cloned().collect(),
        background: vec![StationHistory {
            station: "ref".into(),
            from: station,
            readings: stored(&all[..stop])
                .into_iter()
                .filter(|(_, r)| r.ts.ms() > station)
                .collect(),
        }],
        ..Default::default()
    });
    new.set_foreign_references(&|s: &str| s != "ref");
    for (i, batch) in all.iter().enumerate().skip(stop) {
        got.extend(new.process(&of("s1", batch)));
        got.extend(poll(&mut new, &stored(&all[..=i])));
    }
    assert_eq!(changes(&got), expected);
}

#[test]
fn a_foreign_reference_with_a_fast_clock_keeps_its_minutes() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 90);
    // From minute 45 on the store holds a reading of the station stamped ten hours ahead (a
    // device clock gone wrong).
    let Record::Reading { reading: fast, .. } = sim.reading("ref", t0() + 600 * MIN, 100.0, 45.0)
    else {
        unreachable!("a reading")
    };
    let mut e = split_engine(Profile::default_profile());
    let mut store = Vec::new();
    for (i, batch) in all.iter().enumerate() {
        e.process(&of("s1", batch));
        store = stored(&all[..=i]);
        if i >= 45 {
            store.push(("d1".to_string(), fast.clone()));
        }
        poll(&mut e, &store);
    }
    poll(&mut e, &store);
    let lateness = Profile::default_profile().allowed_lateness_s * 1000;
    assert_eq!(judged_to(&e, "s1"), Some(t0() + 90 * MIN - lateness));
    let reference_missing = e.open_days().iter().any(|d| {
        d.not_judged
            .iter()
            .any(|n| matches!(n.reason, Reason::ReferenceMissing { .. }))
    });
    assert!(!reference_missing, "{:?}", e.open_days());
}
