//! Several aggregator instances behind a 3-node NATS cluster (real nats-servers, real `dustwatch
//! serve` processes, devices publishing MQTT to the nodes' MQTT listeners): every reading is
//! stored exactly once, through the stop of a node, the `kill -9` of an instance and the pause of
//! another. The instances share PostgreSQL when it is installed, else one SQLite file; either
//! holds the fencing table.

mod support;

use support::cluster::*;
use support::*;

/// One cluster test at a time: each runs three servers and two instances, a machine's worth.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PARTITIONS: u32 = 4;
const TTL_S: u64 = 3;

#[test]
fn every_reading_is_stored_once_and_a_stopped_node_does_not_stop_ingest() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = SharedStore::new();
    eprintln!("shared store: {}", data.kind());
    let a = Instance::start(&cluster, "a", &data, PARTITIONS, TTL_S);
    a.wait_owned(PARTITIONS, 60);

    // 12 sites × 5 devices × 20 readings through node 0.
    let first = site_payloads(12, 5, 0, 20);
    let n1 = first.len() as u64;
    publish_in_background(cluster.ports(0).mqtt, "pub-0", first)
        .join()
        .expect("publisher");
    eventually(120, "the first readings stored", || {
        (data.stored().0 >= n1).then_some(())
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
        || (data.stored().0 >= n1 + n2).then_some(()),
    );
    cluster.restart(1);
    // Settle, then check nothing more arrives (no duplicate) and nothing is missing.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(data.stored(), (n1 + n2, n1 + n2), "{}", a.log());
    assert_eq!(a.metric("dustwatch_nats_fenced_batches_total"), Some(0.0));
    assert!(a.metric("dustwatch_nats_acked_total").unwrap_or(0.0) >= (n1 + n2) as f64);
}

/// Two instances sharing one store, spread over the partitions.
fn two_instances(cluster: &NatsCluster, data: &SharedStore) -> (Instance, Instance) {
    let a = Instance::start(cluster, "a", data, PARTITIONS, TTL_S);
    let b = Instance::start(cluster, "b", data, PARTITIONS, TTL_S);
    eventually(60, "the partitions spread over both instances", || {
        (a.owned() == PARTITIONS / 2 && b.owned() == PARTITIONS / 2).then_some(())
    });
    (a, b)
}

#[test]
fn kill_9_of_an_instance_moves_its_partitions_with_nothing_lost_or_doubled() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = SharedStore::new();
    eprintln!("shared store: {}", data.kind());
    let (mut a, b) = two_instances(&cluster, &data);

    let payloads = site_payloads(12, 5, 0, 100);
    let expected = payloads.len() as u64;
    let publisher = publish_in_background(cluster.ports(0).mqtt, "pub-kill", payloads);
    eventually(120, "some readings stored before the kill", || {
        (data.stored().0 >= 1000).then_some(())
    });
    a.kill9();
    let killed = std::time::Instant::now();
    // A's leases expire after the TTL and B takes them. The bound only stops a hung test; the
    // time it took is reported, not asserted (the machine is shared).
    b.wait_owned(PARTITIONS, 120);
    eprintln!(
        "failover: B owns every partition {:.1} s after the kill (lease TTL {TTL_S} s)",
        killed.elapsed().as_secs_f64()
    );
    publisher.join().expect("publisher");
    eventually(120, "every reading stored", || {
        (data.stored().0 >= expected).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        data.stored(),
        (expected, expected),
        "0 lost, 0 doubled; B's log:\n{}",
        b.log()
    );
    assert!(b.metric("dustwatch_nats_leases_taken_total").unwrap_or(0.0) >= 4.0);
}

#[test]
fn a_paused_instance_that_lost_its_leases_writes_nothing_after_the_new_owner() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(cluster) = nats_cluster(3, PARTITIONS) else {
        return;
    };
    let data = SharedStore::new();
    eprintln!("shared store: {}", data.kind());
    let (a, b) = two_instances(&cluster, &data);

    let payloads = site_payloads(12, 5, 0, 150);
    let expected = payloads.len() as u64;
    let publisher = publish_in_background(cluster.ports(1).mqtt, "pub-pause", payloads);
    eventually(120, "some readings stored before the pause", || {
        (data.stored().0 >= 1000).then_some(())
    });
    // Frozen with a batch in hand: fetched, not acknowledged (on its way to the store).
    let mut tries = 0;
    loop {
        a.pause();
        if ack_pending_of(&cluster, "a") > 0 {
            break;
        }
        a.resume();
        tries += 1;
        assert!(tries < 200, "A never caught holding a batch");
        std::thread::sleep(std::time::Duration::from_millis(7));
    }
    b.wait_owned(PARTITIONS, 30);
    if data.kind() == "PostgreSQL" {
        // PostgreSQL ends A's session if A froze inside a transaction, so B writes meanwhile.
        // (SQLite has no such thing: B waits for A's write lock until A resumes.)
        let at_takeover = data.stored().0;
        eventually(120, "the new owner writing", || {
            (data.stored().0 >= (at_takeover + 1000).min(expected)).then_some(())
        });
    }
    a.resume();
    publisher.join().expect("publisher");
    eventually(120, "every reading stored", || {
        (data.stored().0 >= expected).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(data.stored(), (expected, expected), "0 lost, 0 doubled");
    let fenced = a
        .metric("dustwatch_nats_fenced_batches_total")
        .unwrap_or(0.0);
    let lost = a.metric("dustwatch_nats_leases_lost_total").unwrap_or(0.0);
    eprintln!("paused instance: {fenced} batches fenced, {lost} leases lost");
    assert!(lost >= 2.0, "A saw its leases gone: {}", a.log());
    assert!(fenced >= 1.0, "A's batch in hand was refused: {}", a.log());
}
