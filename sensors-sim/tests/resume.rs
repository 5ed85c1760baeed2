//! A run resumed part-way: the clock begins at the resume point, the story (city levels) stays
//! anchored to the scenario's start, and devices come up with a new boot counter.

mod support;

use chrono::{DateTime, Utc};
use std::time::Duration;
use support::{brokers, options, run, Capture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_begins_at_the_resume_point() {
    // huiji-red-alert starts 2017-01-02T00:00+08:00; orange from 24 h, red from 44 h.
    let start = DateTime::parse_from_rfc3339("2017-01-02T00:00:00+08:00")
        .expect("literal")
        .with_timezone(&Utc);
    let begin = start + chrono::Duration::hours(30);
    let (name, port, _keep) = brokers().remove(0);
    let mut cap = Capture::start(port, "rs/v1/#", false).await;
    let mut o = options(port, "rs/v1", 3);
    o.resume_at = Some(begin);
    o.duration = Some(Duration::from_secs(31 * 3600));
    let summary = run("huiji-red-alert", o).await;
    assert_eq!(summary.start_ms, begin.timestamp_millis(), "{name}");
    cap.until("every acknowledged reading", |m| {
        m.iter().filter(|m| m.topic.ends_with("/reading")).count() as u64 >= summary.acked
    })
    .await;

    let readings: Vec<serde_json::Value> = cap
        .of_kind("reading")
        .iter()
        .filter_map(|m| m.json())
        .collect();
    assert!(!readings.is_empty(), "{name}: readings published");
    let ts = |r: &serde_json::Value| r["ts"].as_i64().expect("ts");
    let first = readings.iter().map(ts).min().expect("readings");
    let last = readings.iter().map(ts).max().expect("readings");
    // The first interval ends one minute after the resume point; nothing before it is replayed.
    assert_eq!(first, begin.timestamp_millis() + 60_000, "{name}");
    assert!(last <= (start + chrono::Duration::hours(31)).timestamp_millis());
    // 30 h after the start: boot 1 + 1,800 (one per simulated minute), higher after a reboot.
    assert!(
        readings.iter().all(|r| r["boot"].as_u64() >= Some(1801)),
        "{name}: resumed devices boot anew"
    );
    // The level in force at the resume point is the first one published.
    let level = cap
        .msgs
        .iter()
        .find(|m| m.topic == "rs/v1/city/level")
        .and_then(|m| m.json())
        .expect("a city level");
    assert_eq!(level["level"], "orange", "{name}: {level}");
}
