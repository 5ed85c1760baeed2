//! What NATS's MQTT listener does with what devices send, checked on a real nats-server: QoS 1
//! messages reach the partitioned stream through the subject mapping; a QoS 1 PUBACK does not
//! wait for that stream (a stream that refuses the message still lets the device's PUBACK
//! through); a retained message is captured once, like any other.

mod support;

use async_nats::jetstream::{self, stream};
use support::cluster::*;

async fn stream_with(
    cluster: &NatsCluster,
    max_bytes: i64,
) -> (jetstream::Context, stream::Stream) {
    let client = async_nats::connect(cluster.client_urls()[0].as_str())
        .await
        .expect("connect");
    let js = jetstream::new(client);
    let s = js
        .create_stream(stream::Config {
            name: "DUSTWATCH".into(),
            subjects: vec!["dw.>".into()],
            discard: stream::DiscardPolicy::New,
            max_bytes,
            ..Default::default()
        })
        .await
        .expect("create stream");
    (js, s)
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn qos1_readings_land_in_their_partition_and_a_refusing_stream_still_gets_pubacks() {
    let Some(cluster) = nats_cluster(1, 4) else {
        return;
    };
    let mqtt = cluster.ports(0).mqtt;
    run(async {
        let (_js, mut s) = stream_with(&cluster, 64 * 1024).await;
        // 10 sites × 2 devices × 10 readings, all PUBACKed (publish_all waits for each).
        let payloads = site_payloads(10, 2, 0, 10);
        let sent = payloads.len() as u64;
        support::publish_all(mqtt, "qos1", payloads).await;
        // The PUBACKs came before the stream stored everything (see the module comment): wait
        // until it has, bounded only against a hang.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let kept = s.info().await.expect("stream info").state.messages;
            if kept == sent {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{kept} of {sent} QoS 1 messages captured"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Each site in exactly one partition.
        let mut partitions_of: std::collections::BTreeMap<
            String,
            std::collections::BTreeSet<String>,
        > = Default::default();
        for seq in 1..=sent {
            let m = s.get_raw_message(seq).await.expect("message");
            let tokens: Vec<&str> = m.subject.split('.').collect();
            partitions_of
                .entry(tokens[4].to_string())
                .or_default()
                .insert(tokens[1].to_string());
        }
        assert_eq!(partitions_of.len(), 10);
        assert!(
            partitions_of.values().all(|p| p.len() == 1),
            "{partitions_of:?}"
        );

        // Now overfill: 64 KiB holds a few hundred readings; 2 000 more are all PUBACKed
        // although the stream refuses most of them (DiscardPolicy::New).
        let more = site_payloads(10, 2, 10, 100);
        let more_sent = more.len() as u64;
        support::publish_all(mqtt, "qos1-full", more).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let info = s.info().await.expect("stream info").clone();
        eprintln!(
            "stream full: {} of {} PUBACKed messages kept",
            info.state.messages,
            sent + more_sent
        );
        assert!(
            info.state.messages < sent + more_sent,
            "a PUBACK does not mean the stream kept the message"
        );
    });
}

#[test]
fn a_retained_status_is_captured_once() {
    let Some(cluster) = nats_cluster(1, 4) else {
        return;
    };
    let mqtt = cluster.ports(0).mqtt;
    run(async {
        let (_js, mut s) = stream_with(&cluster, 1 << 20).await;
        let mut opts = rumqttc::MqttOptions::new("retainer", "127.0.0.1", mqtt);
        opts.set_keep_alive(std::time::Duration::from_secs(30));
        let (client, mut ev) = rumqttc::AsyncClient::new(opts, 10);
        client
            .publish(
                "dust/v1/site-1/dev1/status",
                rumqttc::QoS::AtLeastOnce,
                true,
                br#"{"state":"online"}"#.to_vec(),
            )
            .await
            .expect("queue");
        loop {
            match ev.poll().await.expect("broker") {
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) => break,
                _ => continue,
            }
        }
        let _ = client.disconnect().await;
        // A later subscriber would get it from MQTT's own retained store; the device stream
        // holds it once, and a reconnect of the device does not add it again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while s.info().await.expect("stream info").state.messages == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the status never reached the stream"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(s.info().await.expect("stream info").state.messages, 1);
        let m = s.get_raw_message(1).await.expect("message");
        assert!(
            m.subject.ends_with(".dust.v1.site-1.dev1.status"),
            "{}",
            m.subject
        );
    });
}
