//! Store-and-forward across a broker restart: no gap, continuous seq, in order.

mod support;

use dustwatch_protocol::Reading;
use dustwatch_testkit::Mosquitto;
use sensors_sim::{Scenario, Sim, Speed};
use std::sync::atomic::Ordering;
use support::{options, Capture};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_nothing_and_keeps_seq() {
    // rumqttd cannot be stopped, so this one needs Mosquitto (required in CI).
    let Some(mut broker) = Mosquitto::start_persistent() else {
        return;
    };
    let port = broker.port();
    let root = "sf/v1";
    // A persistent session: the broker keeps our queue across its own restart.
    let mut cap = Capture::start(port, &format!("{root}/+/+/reading"), true).await;
    let mut o = options(port, root, 5);
    o.speed = Speed::Factor(600.0);
    o.devices = Some(2);
    let sim = Sim::new(Scenario::load("steady").expect("steady"), o);
    let stats = sim.stats();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(sim.run(stop.clone()));

    cap.until("a few readings", |m| m.len() >= 6).await;
    broker.stop();
    // Wait in event terms: until devices hold readings they could not send.
    while stats.buffered.load(Ordering::Relaxed) < 6 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lost_before = stats.dropped.load(Ordering::Relaxed);
    broker.restart();
    let target = stats.generated.load(Ordering::Relaxed) + 6;
    cap.until("readings after the outage", |m| m.len() as u64 >= target)
        .await;
    stop.cancel();
    handle.await.expect("joins").expect("runs");

    assert_eq!(lost_before, 0);
    for dev in ["steady-00000", "steady-00001"] {
        let mut seqs: Vec<(u64, i64)> = cap
            .msgs
            .iter()
            .filter(|m| m.topic.contains(dev))
            .filter_map(|m| Reading::decode(&m.payload).ok())
            .map(|r| (r.seq, r.ts.ms()))
            .collect();
        // QoS 1 may redeliver; order must hold, duplicates are allowed.
        seqs.dedup();
        assert!(seqs.len() >= 8, "{dev}: {seqs:?}");
        for w in seqs.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "{dev}: seq gap {w:?}");
            assert_eq!(w[1].1 - w[0].1, 60_000, "{dev}: time gap {w:?}");
        }
    }
}
