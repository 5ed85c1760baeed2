//! A failover decides the same alerts as one instance: the simulator (fixed seed, construction
//! sites judged against one reference station) runs through a 3-node NATS cluster once into one
//! instance, then into two instances sharing a PostgreSQL database, one of which is killed with
//! `kill -9` half-way. Every reading is stored exactly once, the alerts (site, rule, opened
//! time, state, severity) are the same in both databases, increment alerts among them, and no
//! day says its reference was missing.

mod support;

use support::cluster::*;
use support::*;

const PARTITIONS: u32 = 4;
const TTL_S: u64 = 3;
const SEED: u64 = 7;

/// Construction sites judged against the reference station `fo-ref`, with faults and uncovered
/// earthwork that raise alerts. With 4 partitions `fo-ref` is in partition 2 and the uncovered
/// sites in 2 (fo-01), 3 (fo-02, fo-06), 0 (fo-10) and 1 (fo-13): however the two instances
/// share the partitions, the one without `fo-ref` judges some of them against it.
const SCENARIO: &str = r#"
name = "failover"
description = "Alerts from each site's own data"
start = "2017-01-02T06:30:00+08:00"
duration = "5h"
timezone = "Asia/Shanghai"
interval_s = 60

[background]
pm25 = [["0h", 150.0], ["5h", 220.0]]

[defaults]
work = ["07:00-12:00", "13:00-18:00"]
sprinkle = ["08:00", "14:00"]
sprinkle_minutes = 30
covered = true
devices = 1

[[site]]
id = "fo-ref"
name = "District monitoring station"
street = "Xincheng"
kind = "reference"
phase = "idle"

[[site]]
id = "fo-01"
name = "Uncovered earthwork"
street = "Yingbin Road"
phase = "earthwork"
covered = false

[[site]]
id = "fo-02"
name = "Uncovered foundation"
street = "Liuzhai"
phase = "foundation"
covered = false

[[site]]
id = "fo-03"
name = "Stuck sensor"
street = "Xincheng"
phase = "structure"
[[site.fault]]
kind = "stuck"
start = "1h"
end = "3h"

[[site]]
id = "fo-04"
name = "Spiking sensor"
street = "Dahe Road"
phase = "structure"
[[site.fault]]
kind = "spikes"
start = "30m"
end = "4h"
every = "1h"
factor = 8.0

[[site]]
id = "fo-05"
name = "Stuck later"
street = "Laoyachen"
phase = "fitout"
[[site.fault]]
kind = "stuck"
start = "2h30m"
end = "4h"

[[site]]
id = "fo-06"
name = "Uncovered, two monitors"
street = "Huayuankou"
phase = "earthwork"
covered = false
devices = 2

[[site]]
id = "fo-07"
name = "Quiet structure"
street = "Guxing"
phase = "structure"

[[site]]
id = "fo-08"
name = "Quiet fit-out"
street = "Changxing Road"
phase = "fitout"

[[site]]
id = "fo-10"
name = "Uncovered earthwork, west"
street = "Yingbin Road"
phase = "earthwork"
covered = false

[[site]]
id = "fo-13"
name = "Uncovered earthwork, east"
street = "Liuzhai"
phase = "earthwork"
covered = false
"#;

/// The scenario's sites as the aggregators' registry (kinds, phases, the reference station),
/// and the configuration lines that load it.
fn registry(dir: &std::path::Path) -> String {
    let scenario = sensors_sim::Scenario::parse(SCENARIO, "failover").expect("scenario parses");
    let path = dir.join("registry.toml");
    let text = toml::to_string(&scenario.registry()).expect("registry as TOML");
    std::fs::write(&path, text).expect("write registry");
    format!(
        "[registry]\nfile = {:?}\n",
        path.to_str().expect("utf-8 path")
    )
}

/// The readings the scenario sends, and its run in the background (simulated minutes at
/// `speed` per real second) against one node's MQTT listener.
fn simulate(
    dir: &std::path::Path,
    port: u16,
    prefix: &str,
    speed: f64,
) -> std::thread::JoinHandle<u64> {
    let path = dir.join("failover.toml");
    std::fs::write(&path, SCENARIO).expect("write scenario");
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let scenario = sensors_sim::Scenario::load(path.to_str().expect("utf-8 path"))
                .expect("scenario loads");
            let options = sensors_sim::SimOptions {
                port,
                seed: SEED,
                speed: sensors_sim::Speed::Factor(speed),
                client_prefix: prefix,
                ..Default::default()
            };
            sensors_sim::Sim::new(scenario, options)
                .run(tokio_util::sync::CancellationToken::new())
                .await
                .expect("simulator runs")
                .acked
        })
    })
}

/// (site, rule, opened, state, severity) of every alert, sorted.
type AlertKey = (String, String, i64, String, String);

fn alerts(url: &str) -> Vec<AlertKey> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query(
        "SELECT site, rule, opened_ts, state, severity FROM alerts \
         ORDER BY site, rule, opened_ts, state, severity",
        &[],
    )
    .expect("alerts")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// (site, reasons) of the stored days whose figures say a rule was not judged because the
/// reference station's data was missing.
fn reference_missing(url: &str) -> Vec<(String, String)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query(
        "SELECT site, not_judged FROM daily_stats WHERE not_judged LIKE '%reference_missing%' \
         ORDER BY site",
        &[],
    )
    .expect("days")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Sites with stored day figures.
fn day_sites(url: &str) -> usize {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let r = c
        .query_one("SELECT count(DISTINCT site) FROM daily_stats", &[])
        .expect("count");
    r.get::<_, i64>(0) as usize
}

fn alert_ids_unique(url: &str) -> (i64, i64) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let r = c
        .query_one(
            "SELECT count(*), count(DISTINCT (site, rule, opened_ts)) FROM alerts",
            &[],
        )
        .expect("count");
    (r.get(0), r.get(1))
}

/// Wait until the instances stored `expected` readings and their alerts stopped changing.
fn settle(data: &SharedStore, url: &str, expected: u64) -> Vec<AlertKey> {
    eventually(180, "every reading stored", || {
        (data.stored().0 >= expected).then_some(())
    });
    let mut last = alerts(url);
    let mut same = 0;
    // Quiet for a few seconds in a row: the rules caught up with the store.
    while same < 6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = alerts(url);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

#[test]
fn a_killed_instance_s_sites_are_judged_on_to_the_same_alerts_as_one_instance() {
    let Some(cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");

    // One instance: the reference answer.
    let solo_data = SharedStore::new();
    let Some(solo_url) = solo_data.postgres_url().map(str::to_string) else {
        eprintln!("skipped: alert ids are shared through PostgreSQL, which is not installed");
        return;
    };
    let registry = registry(dir.path());
    let mut solo = Instance::start_with(&cluster, "solo", &solo_data, PARTITIONS, TTL_S, &registry);
    solo.wait_owned(PARTITIONS, 60);
    let stats = simulate(dir.path(), cluster.ports(0).mqtt, "one", 600.0)
        .join()
        .expect("simulator");
    let expected = stats;
    assert!(expected > 1000, "the scenario sent {expected} readings");
    let one = settle(&solo_data, &solo_url, expected);
    assert_eq!(solo_data.stored(), (expected, expected), "{}", solo.log());
    let sites = sites_in(SCENARIO);
    eventually(30, "every site's day saved", || {
        (day_sites(&solo_url) >= sites).then_some(())
    });
    solo.kill9();
    assert!(
        one.len() >= 3,
        "the scenario raises alerts: {one:?}\n{}",
        solo.log()
    );
    assert!(
        one.iter().any(|a| a.1 == "pm10-hourly"),
        "increment alerts (PM10 over the reference station): {one:?}"
    );
    assert_eq!(reference_missing(&solo_url), vec![]);
    eprintln!("one instance: {} alerts", one.len());
    for a in &one {
        eprintln!("  {a:?}");
    }

    // Two instances on a database of their own; A dies half-way.
    let data = SharedStore::new();
    let url = data.postgres_url().expect("PostgreSQL").to_string();
    // Solo's leases lapse first (it could not give them back).
    std::thread::sleep(std::time::Duration::from_secs(TTL_S + 1));
    let mut a = Instance::start_with(&cluster, "a", &data, PARTITIONS, TTL_S, &registry);
    let b = Instance::start_with(&cluster, "b", &data, PARTITIONS, TTL_S, &registry);
    eventually(60, "the partitions spread over both instances", || {
        (a.owned() == PARTITIONS / 2 && b.owned() == PARTITIONS / 2).then_some(())
    });
    let sim = simulate(dir.path(), cluster.ports(1).mqtt, "two", 600.0);
    eventually(180, "half the readings stored", || {
        (data.stored().0 >= expected / 2).then_some(())
    });
    let taken_before = b.metric("dustwatch_nats_leases_taken_total").unwrap_or(0.0);
    let rounds_before = b.metric("dustwatch_nats_lease_rounds_total").unwrap_or(0.0);
    a.kill9();
    b.wait_owned(PARTITIONS, 120);
    // Failover within the lease TTL plus a margin, counted in B's own lease rounds (one every
    // third of the TTL): A's leases lapse after the TTL, and B takes them at its next round.
    let rounds = b.metric("dustwatch_nats_lease_rounds_total").unwrap_or(0.0) - rounds_before;
    eprintln!("failover: B took A's partitions within {rounds} lease rounds (TTL {TTL_S} s, a round every {} s)", TTL_S as f64 / 3.0);
    assert!(
        rounds <= 3.0 * 2.0 + 2.0,
        "A's partitions moved within twice the TTL in lease rounds: {rounds}"
    );
    assert!(b.metric("dustwatch_nats_leases_taken_total").unwrap_or(0.0) >= taken_before + 2.0);
    let stats2 = sim.join().expect("simulator");
    assert_eq!(stats2, expected, "the same seed sends the same readings");
    let two = settle(&data, &url, expected);
    assert_eq!(data.stored(), (expected, expected), "0 lost, 0 doubled");
    assert!(
        b.log().contains("partition's sites rebuilt from the store"),
        "{}",
        b.log()
    );
    let (n, distinct) = alert_ids_unique(&url);
    assert_eq!(n, distinct, "no alert was opened twice");
    assert_eq!(
        two,
        one,
        "the same alerts as one instance; A's log:\n{}\nB's log:\n{}",
        a.log(),
        b.log()
    );
    // Every site's open day was saved (every few seconds), and none was judged without its
    // reference station.
    eventually(30, "every site's day saved", || {
        (day_sites(&url) >= sites).then_some(())
    });
    assert_eq!(reference_missing(&url), vec![]);
}

/// How many sites a scenario has.
fn sites_in(scenario: &str) -> usize {
    scenario.matches("[[site]]").count()
}
