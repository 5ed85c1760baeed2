//! Ingest end to end in-process: a real broker (embedded rumqttd; Mosquitto where installed),
//! the aggregator started as a library, HTTP over a real socket.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::{RejectReason, TopicRoot};
use std::sync::atomic::Ordering::Relaxed;
use support::*;
use tokio_util::sync::CancellationToken;

fn config(broker_port: u16, data: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
    c.mqtt.client_id = format!("ingest-test-{broker_port}");
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c
}

async fn good_and_bad_input_is_sorted(broker_port: u16) {
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config(broker_port, data.path()), vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    let m = agg.metrics.clone();

    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000i64;
    let r = |seq: u64| reading(t0 + seq as i64 * 60_000, seq, 1).encode();
    let msgs: Vec<(String, Vec<u8>)> = vec![
        (root.reading("s1", "d1"), r(1)),
        (root.reading("s1", "d1"), r(2)),
        (root.reading("s1", "d2"), r(3)),
        // duplicate publish of seq 2
        (root.reading("s1", "d1"), r(2)),
        (root.reading("s1", "d1"), b"{\"ts\":".to_vec()),
        (
            root.reading("s1", "d1"),
            br#"{"ts":1483228800000,"seq":9,"boot":1,"interval_s":60,"pm10":NaN}"#.to_vec(),
        ),
        (
            root.reading("s1", "d1"),
            br#"{"ts":1483228800000,"seq":9,"boot":1,"interval_s":60,"pm10":-5}"#.to_vec(),
        ),
        ("dust/v1/s.1/d1/reading".to_string(), r(4)),
        (root.reading("s1", "d1"), vec![b' '; 8000]),
        (
            root.event("s1", "d1"),
            br#"{"ts":1483228860000,"seq":5,"boot":1,"kind":"sprinkler_on"}"#.to_vec(),
        ),
        (
            root.status("s1", "d1"),
            br#"{"state":"online","fw":"1.0.0","boot":1,"interval_s":60}"#.to_vec(),
        ),
    ];
    let total = msgs.len() as u64;
    publish_all(broker_port, &format!("pub-{broker_port}"), msgs).await;

    let reader = agg.reader.clone();
    let counts = tokio::task::spawn_blocking(move || {
        eventually(30, "all messages committed", || {
            let c = reader.counts().ok()?;
            (c.readings + c.dead_letters + c.events >= total - 2).then_some(c)
        })
    })
    .await
    .expect("wait");
    assert_eq!(counts.readings, 3, "three distinct readings");
    assert_eq!(counts.events, 1);
    assert_eq!(counts.dead_letters, 5, "five rejected messages kept raw");
    // Stats are updated right after the commit the counts saw.
    tokio::task::spawn_blocking({
        let m = m.clone();
        move || {
            eventually(10, "duplicate counted", || {
                (m.duplicates.load(Relaxed) == 1).then_some(())
            })
        }
    })
    .await
    .expect("wait");
    for reason in [
        RejectReason::MalformedJson,
        RejectReason::NonFinite,
        RejectReason::OutOfRange,
        RejectReason::BadTopic,
        RejectReason::Oversized,
    ] {
        assert_eq!(m.rejected(reason), 1, "{reason}");
    }

    let port = agg.http_addr.port();
    let (code, body) = tokio::task::spawn_blocking(move || http_get(port, "/api/sites"))
        .await
        .expect("get");
    assert_eq!(code, 200);
    let sites: serde_json::Value = serde_json::from_str(&body).expect("json");
    let s1 = &sites[0];
    assert_eq!(s1["id"], "s1");
    assert_eq!(s1["status"], "unregistered");
    assert_eq!(s1["latest"]["reading"]["seq"], 3, "newest by event time");

    let (code, body) = tokio::task::spawn_blocking(move || {
        http_get(
            port,
            "/api/sites/s1/series?metric=pm25&from=1483228800000&to=1483229100000&step=60",
        )
    })
    .await
    .expect("get");
    assert_eq!(code, 200, "{body}");
    let series: serde_json::Value = serde_json::from_str(&body).expect("json");
    let points = series["points"].as_array().expect("points");
    assert_eq!(points.len(), 3, "{body}");
    assert_eq!(points[0]["mean"], 1.0);
    assert_eq!(points[0]["count"], 1);

    let (code, metrics) = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .expect("get");
    assert_eq!(code, 200);
    assert_eq!(
        metric(&metrics, "dustwatch_rejected_total{reason=\"non_finite\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "dustwatch_readings_stored_total"),
        Some(3.0)
    );

    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_good_and_bad_input() {
    let broker = embedded_broker();
    good_and_bad_input_is_sorted(broker.addr().port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_good_and_bad_input() {
    let Some(m) = Mosquitto::start() else { return };
    good_and_bad_input_is_sorted(m.port()).await;
}

/// Start an aggregator on `config` and wait for its subscription.
async fn start_subscribed(config: &Config, shutdown: &CancellationToken) -> Aggregator {
    let agg = Aggregator::start(config, vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    agg
}

/// A message far over the transport limit (1 MiB; ingest reads at most 256 KiB whole) becomes a
/// dead letter and the session carries on: no reconnect, and the next message is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_huge_message_is_a_dead_letter_and_the_session_stays() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = start_subscribed(&config(broker.port(), data.path()), &shutdown).await;
    let root = TopicRoot::default();
    let mut huge = reading(1_483_228_800_000, 1, 1).encode();
    huge.resize(1 << 20, b' ');
    let good = reading(1_483_228_860_000, 2, 1).encode();
    publish_all(
        broker.port(),
        "pub-huge",
        vec![
            (root.reading("s1", "d1"), huge),
            (root.reading("s1", "d1"), good),
        ],
    )
    .await;
    let reader = agg.reader.clone();
    let counts = tokio::task::spawn_blocking(move || {
        eventually(30, "both messages committed", || {
            let c = reader.counts().ok()?;
            (c.readings + c.dead_letters >= 2).then_some(c)
        })
    })
    .await
    .expect("wait");
    assert_eq!((counts.readings, counts.dead_letters), (1, 1));
    let m = agg.metrics.clone();
    assert_eq!(m.rejected(RejectReason::Oversized), 1);
    assert_eq!(m.reconnects.load(Relaxed), 1, "the session never dropped");
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

/// Ingest stops reading while its queue is full and acknowledges in bulk after each commit: with
/// a queue of 8 and batches of 4, a stream of 3,000 readings is stored whole, each once.
async fn a_small_queue_stores_a_long_stream_once(broker_port: u16) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut c = config(broker_port, data.path());
    c.ingest.queue = 8;
    c.ingest.batch_max = 4;
    c.rules.enabled = false;
    let shutdown = CancellationToken::new();
    let agg = start_subscribed(&c, &shutdown).await;
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000i64;
    let total = 3_000u64;
    let msgs = (0..total)
        .map(|k| {
            let (device, seq) = (k % 10, k / 10);
            (
                root.reading("s1", &format!("d{device}")),
                reading(t0 + seq as i64 * 60_000, seq, 1).encode(),
            )
        })
        .collect();
    publish_all(broker_port, &format!("pub-stream-{broker_port}"), msgs).await;
    wait_readings(&agg, total).await;
    let m = agg.metrics.clone();
    assert_eq!(m.stored.load(Relaxed), total);
    assert_eq!(m.duplicates.load(Relaxed), 0, "nothing redelivered");
    assert_eq!(m.reconnects.load(Relaxed), 1, "one connection throughout");
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_small_queue_long_stream() {
    let broker = embedded_broker();
    a_small_queue_stores_a_long_stream_once(broker.addr().port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_small_queue_long_stream() {
    let Some(m) = Mosquitto::start() else { return };
    a_small_queue_stores_a_long_stream_once(m.port()).await;
}

/// The broker goes away and comes back on the same port: ingest reconnects with backoff,
/// subscribes again and goes on storing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restart_reconnects_and_resumes() {
    let Some(mut broker) = Mosquitto::start_persistent() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = start_subscribed(&config(broker.port(), data.path()), &shutdown).await;
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000i64;
    let readings = |seqs: std::ops::Range<u64>| {
        seqs.map(|seq| {
            (
                root.reading("s1", "d1"),
                reading(t0 + seq as i64 * 60_000, seq, 1).encode(),
            )
        })
        .collect::<Vec<_>>()
    };
    publish_all(broker.port(), "pub-before", readings(0..50)).await;
    wait_readings(&agg, 50).await;

    broker.stop();
    broker.restart();
    let m = agg.metrics.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "reconnected and subscribed", || {
            (m.reconnects.load(Relaxed) >= 2 && m.mqtt_subscribed.load(Relaxed) == 1).then_some(())
        })
    })
    .await
    .expect("wait");
    publish_all(broker.port(), "pub-after", readings(50..100)).await;
    wait_readings(&agg, 100).await;
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

/// The embedded broker with a login: ingest logs in with `[mqtt] username/password`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_with_a_login() {
    let broker = dustwatch_broker::EmbeddedBroker::start(&dustwatch_broker::BrokerConfig {
        listen: "127.0.0.1:0".parse().expect("literal"),
        username: Some("office".into()),
        password: Some("s3cret".into()),
        ..Default::default()
    })
    .expect("broker starts");
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut c = config(port, data.path());
    c.mqtt.username = Some("office".into());
    c.mqtt.password = Some("s3cret".into());
    let shutdown = CancellationToken::new();
    let agg = start_subscribed(&c, &shutdown).await;
    let root = TopicRoot::default();
    let msg = (
        root.reading("s1", "d1"),
        reading(1_483_228_800_000, 1, 1).encode(),
    );
    publish_all_as(port, "pub-login", Some(("office", "s3cret")), vec![msg]).await;
    wait_readings(&agg, 1).await;
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}
