//! Several aggregator instances behind a 3-node NATS cluster (real nats-servers, real `dustwatch
//! serve` processes, devices publishing MQTT to the nodes' MQTT listeners): every reading is
//! stored exactly once, through the stop of a node, the `kill -9` of an instance and the pause of
//! another. Until the shared PostgreSQL store is in, the instances share one SQLite file, which
//! holds the fencing table too.

mod support;

use support::cluster::*;
use support::*;

const PARTITIONS: u32 = 4;
const TTL_S: u64 = 3;

#[test]
fn every_reading_is_stored_once_and_a_stopped_node_does_not_stop_ingest() {
    let Some(mut cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = tempfile::tempdir().expect("data dir");
    let a = Instance::start(&cluster, "a", data.path(), PARTITIONS, TTL_S);
    a.wait_owned(PARTITIONS, 60);

    // 12 sites × 5 devices × 20 readings through node 0.
    let first = site_payloads(12, 5, 0, 20);
    let n1 = first.len() as u64;
    publish_in_background(cluster.ports(0).mqtt, "pub-0", first)
        .join()
        .expect("publisher");
    eventually(120, "the first readings stored", || {
        (stored(data.path()).0 >= n1).then_some(())
    });

    // One node goes away (its stream replicas with it); devices on another node keep going.
    cluster.stop(1);
    let second = site_payloads(12, 5, 20, 20);
    let n2 = second.len() as u64;
    if publish_in_background(cluster.ports(2).mqtt, "pub-2", second)
        .join()
        .is_err()
    {
        panic!("publisher failed; node 2's log:\n{}", cluster.log(2));
    }
    eventually(
        120,
        "the readings sent while a node was down stored",
        || (stored(data.path()).0 >= n1 + n2).then_some(()),
    );
    cluster.restart(1);
    // Settle, then check nothing more arrives (no duplicate) and nothing is missing.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(stored(data.path()), (n1 + n2, n1 + n2), "{}", a.log());
    assert_eq!(a.metric("dustwatch_nats_fenced_batches_total"), Some(0.0));
    assert!(a.metric("dustwatch_nats_acked_total").unwrap_or(0.0) >= (n1 + n2) as f64);
}

/// Two instances sharing one store, spread over the partitions.
fn two_instances(cluster: &NatsCluster, data: &std::path::Path) -> (Instance, Instance) {
    let a = Instance::start(cluster, "a", data, PARTITIONS, TTL_S);
    let b = Instance::start(cluster, "b", data, PARTITIONS, TTL_S);
    eventually(60, "the partitions spread over both instances", || {
        (a.owned() == PARTITIONS / 2 && b.owned() == PARTITIONS / 2).then_some(())
    });
    (a, b)
}

#[test]
fn kill_9_of_an_instance_moves_its_partitions_with_nothing_lost_or_doubled() {
    let Some(cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = tempfile::tempdir().expect("data dir");
    let (mut a, b) = two_instances(&cluster, data.path());

    let payloads = site_payloads(12, 5, 0, 100);
    let expected = payloads.len() as u64;
    let publisher = publish_in_background(cluster.ports(0).mqtt, "pub-kill", payloads);
    eventually(120, "some readings stored before the kill", || {
        (stored(data.path()).0 >= 1000).then_some(())
    });
    a.kill9();
    // A's leases expire after the TTL; B takes them (within 30 s here).
    b.wait_owned(PARTITIONS, 30);
    publisher.join().expect("publisher");
    eventually(120, "every reading stored", || {
        (stored(data.path()).0 >= expected).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        stored(data.path()),
        (expected, expected),
        "0 lost, 0 doubled; B's log:\n{}",
        b.log()
    );
    assert!(b.metric("dustwatch_nats_leases_taken_total").unwrap_or(0.0) >= 4.0);
}

#[test]
fn a_paused_instance_that_lost_its_leases_writes_nothing_after_the_new_owner() {
    let Some(cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = tempfile::tempdir().expect("data dir");
    let (a, b) = two_instances(&cluster, data.path());

    let payloads = site_payloads(12, 5, 0, 150);
    let expected = payloads.len() as u64;
    let publisher = publish_in_background(cluster.ports(1).mqtt, "pub-pause", payloads);
    eventually(120, "some readings stored before the pause", || {
        (stored(data.path()).0 >= 1000).then_some(())
    });
    // Frozen with whatever it holds: fetched messages, perhaps a batch on its way to the store.
    a.pause();
    b.wait_owned(PARTITIONS, 30);
    let at_takeover = stored(data.path()).0;
    eventually(120, "the new owner writing", || {
        (stored(data.path()).0 >= (at_takeover + 1000).min(expected)).then_some(())
    });
    a.resume();
    publisher.join().expect("publisher");
    eventually(120, "every reading stored", || {
        (stored(data.path()).0 >= expected).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        stored(data.path()),
        (expected, expected),
        "0 lost, 0 doubled"
    );
    let fenced = a
        .metric("dustwatch_nats_fenced_batches_total")
        .unwrap_or(0.0);
    let lost = a.metric("dustwatch_nats_leases_lost_total").unwrap_or(0.0);
    eprintln!("paused instance: {fenced} batches fenced, {lost} leases lost");
    assert!(lost >= 2.0, "A saw its leases gone: {}", a.log());
}
