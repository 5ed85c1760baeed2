//! Same seed and options, same payload stream per device; a different seed, a different stream.

mod support;

use std::time::Duration;
use support::{brokers, options, run, Capture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_the_same_payloads() {
    for (name, port, _keep) in brokers() {
        let mut cap = Capture::start(port, "+/v1/+/+/reading", false).await;
        let mut summaries = Vec::new();
        for (root, seed) in [("a/v1", 7), ("b/v1", 7), ("c/v1", 8)] {
            let mut o = options(port, root, seed);
            o.duration = Some(Duration::from_secs(2 * 3600));
            summaries.push(run("faults", o).await);
        }
        let total: u64 = summaries.iter().map(|s| s.acked).sum();
        cap.until("every acknowledged reading", |m| m.len() as u64 >= total)
            .await;
        let by_root = |root: &str| {
            let mut c = cap.readings_by_device();
            c.retain(|k, _| k.starts_with(root));
            // QoS 1 is at least once: a retransmission after a dropped connection may repeat a
            // message, so compare the first arrival of each distinct payload.
            c.into_iter()
                .map(|(k, v)| {
                    let mut seen = std::collections::HashSet::new();
                    let firsts: Vec<Vec<u8>> =
                        v.into_iter().filter(|p| seen.insert(p.clone())).collect();
                    (k.trim_start_matches(root).to_string(), firsts)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (a, b, c) = (by_root("a/v1/"), by_root("b/v1/"), by_root("c/v1/"));
        assert_eq!(a.len(), 9, "{name}: every device published");
        let differing: Vec<&String> = a.keys().filter(|k| a.get(*k) != b.get(*k)).collect();
        assert!(
            differing.is_empty(),
            "{name}: same seed, other payloads on {differing:?}"
        );
        assert!(
            a.keys().all(|k| a.get(k) != c.get(k)),
            "{name}: another seed, other payloads"
        );
    }
}
