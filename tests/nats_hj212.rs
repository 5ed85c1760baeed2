//! HJ 212 monitors on TCP when ingest comes from a NATS cluster: a frame's reading goes through
//! the site's partition (published to JetStream, stored by the partition's consumer, acked to
//! JetStream after the commit), and the monitor gets its reply once JetStream acknowledged the
//! publish. A refused frame still leaves its dead letter.

mod support;

use dustwatch::ingest::nats::Source;
use dustwatch_protocol::hj212::{Cn, Frame};
use std::sync::atomic::Ordering::Relaxed;
use support::cluster::*;
use support::hj212::*;
use tokio::io::AsyncWriteExt;

async fn ask(s: &mut tokio::net::TcpStream, frame: &[u8]) -> Frame {
    s.write_all(frame).await.expect("send");
    reply(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_s_frames_go_through_the_partitions_and_are_answered_after_the_publish() {
    let Some(cluster) = nats_cluster(3, 4) else {
        return;
    };
    let servers = cluster.client_urls();
    let l = Listener::start(REGISTRY, move |c| {
        c.ingest.source = Source::Nats;
        c.nats.servers = servers;
        c.nats.partitions = 4;
        c.nats.replicas = 3;
        c.nats.lease_ttl_s = 3;
        c.nats.instance = Some("hj212".into());
    })
    .await;
    let m = l.agg.metrics.clone();
    l.until("every partition owned", move |_| {
        m.nats.partitions_owned.load(Relaxed) == 4
    })
    .await;

    let mut device = l.connect_from([127, 0, 0, 1]).await;
    for minute in 0..3 {
        let ack = ask(
            &mut device,
            &data_frame(MN1, PW1, &format!("2017010215{minute:02}00001"), minute),
        )
        .await;
        assert_eq!(ack.cn, Cn::DataReply, "minute {minute}: {ack:?}");
    }
    // Stored by the partition's consumer (acknowledged to JetStream after its commit), not
    // by the listener.
    let m = l.agg.metrics.clone();
    l.until("the three readings stored through NATS", move |_| {
        m.stored.load(Relaxed) == 3 && m.nats.acked.load(Relaxed) >= 3
    })
    .await;
    let reader = l.agg.reader.clone();
    let readings = tokio::task::spawn_blocking(move || reader.readings("s1", 0, i64::MAX))
        .await
        .expect("read")
        .expect("readings");
    assert_eq!(readings.len(), 3);
    assert!(readings
        .iter()
        .all(|(device, r)| device == "d1" && r.pm10 == Some(80.0)));

    // A wrong password: refused, and its dead letter is kept.
    let r = ask(
        &mut device,
        &data_frame(MN1, "000000", "20170102150500001", 5),
    )
    .await;
    assert_eq!(r.cn, Cn::RequestReply);
    let reader = l.agg.reader.clone();
    l.until("the refusal's dead letter stored", move |_| {
        reader.counts().is_ok_and(|c| c.dead_letters == 1)
    })
    .await;
    l.stop().await;
}
