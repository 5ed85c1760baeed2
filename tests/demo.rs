//! `dustwatch demo` stopped with Ctrl-C and started again on the same data: the simulated fleet
//! resumes where the store stopped instead of replaying what it already holds.

mod support;

use support::*;

/// Newest reading time over all sites, from the API.
fn newest(port: u16) -> Option<i64> {
    let (code, body) = http_get(port, "/api/sites");
    assert_eq!(code, 200, "{body}");
    let sites: serde_json::Value = serde_json::from_str(&body).expect("json");
    sites
        .as_array()?
        .iter()
        .filter_map(|s| s["latest"]["reading"]["ts"].as_i64())
        .max()
}

#[test]
fn a_second_start_resumes_the_fleet_where_the_store_stopped() {
    let first = DemoProcess::start(600.0);
    let port = first.http_port;
    // At speed 600 a simulated minute takes 0.1 s: wait for 30 of them.
    let t0 = eventually(60, "readings in the first run", || newest(port));
    let stopped_at = eventually(60, "the first run moves on", || {
        newest(port).filter(|t| *t >= t0 + 30 * 60_000)
    });
    let dir = first.interrupt();

    let second = DemoProcess::start_in(dir, 600.0);
    let port = second.http_port;
    let resumed = eventually(60, "new readings in the second run", || {
        newest(port).filter(|t| *t > stopped_at + 10 * 60_000)
    });
    assert!(resumed > stopped_at);
    let (_, metrics) = http_get(port, "/metrics");
    let stored = metric(&metrics, "dustwatch_readings_stored_total").expect("stored");
    assert!(stored > 0.0, "the second run stores new readings");
    assert_eq!(
        metric(&metrics, "dustwatch_duplicates_total"),
        Some(0.0),
        "nothing of the first run is replayed"
    );
}

/// Oldest of the sites' newest readings, from the API: right after the first data arrives,
/// where the fleet began.
fn oldest_latest(port: u16) -> Option<i64> {
    let (_, body) = http_get(port, "/api/sites");
    let sites: serde_json::Value = serde_json::from_str(&body).ok()?;
    sites
        .as_array()?
        .iter()
        .filter_map(|s| s["latest"]["reading"]["ts"].as_i64())
        .min()
}

#[test]
fn a_first_run_opens_just_before_the_level_rises_and_shows_a_breach_within_minutes() {
    // huiji-red-alert starts 2017-01-02 00:00 +08:00; yellow at 08:00, earthwork then stops.
    let start = 1_483_286_400_000i64;
    let yellow = start + 8 * 3_600_000;
    let demo = DemoProcess::start(600.0);
    let port = demo.http_port;
    let first = eventually(60, "first readings", || oldest_latest(port));
    assert!(
        (yellow - 15 * 60_000..yellow).contains(&first),
        "the fleet begins shortly before the yellow warning, not at the scenario start: {first}"
    );
    let level = eventually(60, "the yellow warning", || {
        let (_, body) = http_get(port, "/api/city/level");
        body.contains("yellow").then_some(body)
    });
    assert!(level.contains(&yellow.to_string()), "{level}");
    let opened = eventually(60, "an earthwork restriction alert", || {
        let (_, body) = http_get(port, "/api/alerts");
        let alerts: serde_json::Value = serde_json::from_str(&body).ok()?;
        alerts
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "earthwork-restriction")
            .and_then(|a| a["opened_ts"].as_i64())
    });
    // In event time: at the default speed (a simulated minute per second) the fleet begins ten
    // seconds before the level rises and the alert follows within half a minute of it.
    assert!(
        (yellow..=yellow + 30 * 60_000).contains(&opened),
        "breach alert {} simulated minutes after the yellow warning",
        (opened - yellow) / 60_000
    );
}
