//! `--speed max` advances the fleet in lockstep: the same readings as a paced run, sent in
//! event-time order across devices (no device runs ahead of the others).

mod support;

use sensors_sim::Speed;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{brokers, options, run, Capture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_speed_sends_what_a_paced_run_sends_in_lockstep() {
    const INFLIGHT: u16 = 4;
    for (name, port, _keep) in brokers() {
        let mut cap = Capture::start(port, "+/v1/+/+/reading", false).await;
        let mut acked = 0;
        for (root, speed) in [
            ("paced/v1", Speed::Factor(14_400.0)),
            ("max/v1", Speed::Max),
        ] {
            let mut o = options(port, root, 3);
            o.speed = speed;
            o.inflight = INFLIGHT;
            o.duration = Some(Duration::from_secs(10 * 3600));
            acked += run("huiji-red-alert", o).await.acked;
        }
        cap.until("every acknowledged reading", |m| m.len() as u64 >= acked)
            .await;
        // Distinct payloads per device (QoS 1 may deliver one twice).
        let by_root = |root: &str| -> BTreeMap<String, BTreeSet<Vec<u8>>> {
            cap.readings_by_device()
                .into_iter()
                .filter(|(k, _)| k.starts_with(root))
                .map(|(k, v)| {
                    (
                        k.trim_start_matches(root).to_string(),
                        v.into_iter().collect(),
                    )
                })
                .collect()
        };
        let (paced, max) = (by_root("paced/v1/"), by_root("max/v1/"));
        assert_eq!(paced.len(), 43, "{name}: every device published");
        assert_eq!(paced, max, "{name}: the same readings at any speed");

        // In arrival order, no reading is more than a device's in-flight window (and the tick
        // under way) behind the newest reading of the fleet: no device ran ahead.
        let mut newest = i64::MIN;
        let mut worst = 0;
        for m in cap.of_kind("reading") {
            if !m.topic.starts_with("max/v1/") {
                continue;
            }
            let ts = m.json().and_then(|j| j["ts"].as_i64()).expect("reading ts");
            newest = newest.max(ts);
            worst = worst.max(newest - ts);
        }
        let bound = (i64::from(INFLIGHT) + 2) * 60_000;
        assert!(
            worst <= bound,
            "{name}: a reading arrived {} min behind the fleet's newest (bound {} min)",
            worst / 60_000,
            bound / 60_000
        );
    }
}
