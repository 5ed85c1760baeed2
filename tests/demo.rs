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
