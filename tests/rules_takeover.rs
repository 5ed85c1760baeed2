//! Taking sites over mid-stream: an engine that stopped half-way (a killed instance) hands its
//! sites to a new engine through what the store keeps (the records, the open alerts, how far it
//! judged), and the two together decide exactly what one engine fed everything decides.

#[path = "support/rules_sim.rs"]
mod rules_sim;

use dustwatch::rules::{Change, Engine, SiteHistory, Takeover};
use dustwatch::store::Record;
use rules_sim::{changes, decided_by_one, records, Sim};

/// What the store holds of the sites after `old` stopped: every record it was fed, its open
/// alerts and how far it judged each site.
fn takeover(old: &Engine, fed: &[Vec<Record>]) -> Takeover {
    let progress: std::collections::HashMap<String, i64> =
        old.progress().map(|(s, j)| (s.to_string(), j)).collect();
    let sites = ["s1", "ref"]
        .into_iter()
        .map(|site| SiteHistory {
            site: site.to_string(),
            readings: fed
                .iter()
                .flatten()
                .filter_map(|r| match r {
                    Record::Reading {
                        site: s,
                        device,
                        reading,
                    } if s == site => Some((device.clone(), reading.clone())),
                    _ => None,
                })
                .collect(),
            judged_to: progress.get(site).copied(),
            ..Default::default()
        })
        .collect();
    Takeover {
        sites,
        open: old.book().open_alerts().cloned().collect(),
        ..Default::default()
    }
}

#[test]
fn a_new_engine_takes_over_half_way_and_decides_what_one_engine_decides() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 300);

    let expected = decided_by_one(&all);
    assert!(
        expected.iter().any(|c| c.2 == Change::Opened)
            && expected.iter().any(|c| c.2 == Change::Cleared),
        "the breach opens and closes an alert: {expected:?}"
    );

    // Stopped at several points: before, inside and after the breach.
    for stop in [20usize, 60, 100, 130, 200] {
        let mut old = Sim::new().e;
        let mut got = Vec::new();
        for batch in &all[..stop] {
            got.extend(old.process(batch));
        }
        let mut new = Sim::new().e;
        new.adopt_sites(takeover(&old, &all[..stop]));
        for batch in &all[stop..] {
            got.extend(new.process(batch));
        }
        assert_eq!(changes(&got), expected, "stopped after minute {stop}");
    }
}

#[test]
fn released_sites_are_forgotten_with_their_alerts() {
    let mut sim = Sim::new();
    let all = records(&mut sim, 90);
    let mut e = Sim::new().e;
    for batch in &all {
        e.process(batch);
    }
    assert!(e.book().open_alerts().any(|a| a.site == "s1"));
    e.release_sites(&|s: &str| s == "s1");
    assert!(e.book().open_alerts().all(|a| a.site != "s1"));
    assert!(e.progress().all(|(s, _)| s != "s1"));
    assert!(e.open_days().iter().all(|d| d.site != "s1"));
}
