//! No single message may cost data or stop ingest: a reading stamped in the future, a sequence
//! number the store cannot hold, a full store. Real brokers (embedded rumqttd, Mosquitto), the
//! aggregator in-process and as the real binary, HTTP over real sockets.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch::store::StoreReader;
use dustwatch_protocol::{RejectReason, SiteInfo, TopicRoot};
use std::sync::atomic::Ordering::Relaxed;
use support::*;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_483_228_800_000; // 2017-01-01T00:00:00Z

fn config(broker_port: u16, data: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
    c.mqtt.client_id = format!("trust-test-{broker_port}");
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c
}

fn site(id: &str) -> SiteInfo {
    SiteInfo::new(id, id, "test")
}

/// `hours` hourly readings of each of `sites`, from T0.
fn history(sites: &[&str], hours: i64) -> Vec<(String, Vec<u8>)> {
    let root = &TopicRoot::default();
    (0..hours)
        .flat_map(|h| {
            sites.iter().map(move |s| {
                let r = reading(T0 + h * 3_600_000, h as u64, 1);
                (root.reading(s, "m1"), r.encode())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_stamped_2099_neither_wipes_the_store_nor_takes_sites_offline() {
    let broker = embedded_broker();
    let data = tempfile::tempdir().expect("temp dir");
    let mut c = config(broker.addr().port(), data.path());
    c.store.retention_every_s = 1;
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&c, vec![site("a"), site("b"), site("c")], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    let port = broker.addr().port();
    // Three days of 2017, as a replay or a simulation sends them.
    publish_all(port, "fleet", history(&["a", "b", "c"], 72)).await;
    wait_readings(&agg, 216).await;

    // An anonymous client: one reading from 2099, one from today's wall clock on a made-up site.
    let root = TopicRoot::default();
    let now = chrono::Utc::now().timestamp_millis();
    publish_all(
        port,
        "intruder",
        vec![
            (
                root.reading("x", "d1"),
                reading(4_102_358_400_000, 1, 1).encode(),
            ),
            (root.reading("y", "d1"), reading(now, 1, 1).encode()),
        ],
    )
    .await;
    wait_readings(&agg, 217).await;
    // Two retention passes after both messages were committed.
    let m = agg.metrics.clone();
    let passes = m.retention_passes.load(Relaxed);
    tokio::task::spawn_blocking(move || {
        eventually(30, "two retention passes", || {
            (m.retention_passes.load(Relaxed) >= passes + 2).then_some(())
        })
    })
    .await
    .expect("wait");

    let counts = agg.reader.counts().expect("counts");
    assert_eq!(counts.readings, 217, "retention deleted nothing");
    assert_eq!(agg.metrics.rejected(RejectReason::FutureTimestamp), 1);
    let (status, body) = http_get(agg.http_addr.port(), "/api/sites");
    assert_eq!(status, 200);
    let sites: serde_json::Value = serde_json::from_str(&body).expect("json");
    for s in sites.as_array().expect("array") {
        if ["a", "b", "c"].contains(&s["id"].as_str().unwrap_or_default()) {
            assert_eq!(s["status"], "ok", "{s}");
        }
    }
    let (_, metrics) = http_get(agg.http_addr.port(), "/metrics");
    let clock = metric(&metrics, "dustwatch_fleet_clock_timestamp_seconds").expect("clock");
    assert_eq!(
        clock as i64 * 1000,
        T0 + 71 * 3_600_000,
        "the fleet clock stays in 2017"
    );
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_number_the_store_cannot_hold_does_not_stop_ingest() {
    let mosquitto = Mosquitto::start_persistent();
    let embedded;
    let port = match &mosquitto {
        Some(m) => m.port(),
        None => {
            embedded = embedded_broker();
            embedded.addr().port()
        }
    };
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config(port, data.path()), vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    let root = TopicRoot::default();
    let mut msgs = vec![
        (
            root.reading("s1", "d1"),
            br#"{"ts":1483228800000,"seq":18446744073709551615,"boot":1,"interval_s":60,"pm10":80}"#
                .to_vec(),
        ),
        (
            root.event("s1", "d1"),
            br#"{"ts":1483228800000,"seq":9223372036854775808,"boot":1,"kind":"reboot"}"#.to_vec(),
        ),
    ];
    msgs.extend((1..=50).map(|seq| {
        (
            root.reading("s1", "d1"),
            reading(T0 + seq as i64 * 60_000, seq, 1).encode(),
        )
    }));
    publish_all(port, "poison", msgs).await;
    wait_readings(&agg, 50).await;
    let reader = agg.reader.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "two dead letters", || {
            (reader.counts().ok()?.dead_letters == 2).then_some(())
        })
    })
    .await
    .expect("wait");
    // The writer counts a batch right after committing it: wait for the count, too.
    let m = agg.metrics.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "both counted as out_of_range", || {
            (m.rejected(RejectReason::OutOfRange) == 2).then_some(())
        })
    })
    .await
    .expect("wait");
    assert_eq!(agg.metrics.store_errors.load(Relaxed), 0);
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[test]
fn ctrl_c_stops_the_aggregator_while_the_store_is_full_and_nothing_acked_is_lost() {
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let store = data.path().join("store");
    let limited = "[store]\nmax_size_mib = 1\n";
    let agg = AggregatorProcess::serve_with(port, &store, limited);
    let total = 30_000u64;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(publish_all(
        port,
        "site",
        fleet_payloads("s1", 10, total / 10),
    ));
    eventually(60, "/healthz to report the full store", || {
        let (status, body) = http_get(agg.http_port, "/healthz");
        (status == 503 && body.contains("store stalled")).then_some(())
    });
    assert_eq!(metric(&agg.metrics(), "dustwatch_store_stalled"), Some(1.0));
    let exit = agg.interrupt();
    assert!(exit.success(), "Ctrl-C stops it cleanly: {exit}");

    // The same store without the limit: the broker redelivers what was never acknowledged.
    let agg = AggregatorProcess::serve_with(port, &store, "");
    eventually(60, "every reading stored", || {
        let stored = metric(&agg.metrics(), "dustwatch_readings_stored_total")?;
        let (_, body) = http_get(agg.http_port, "/healthz");
        (body == "ok\n" && stored > 0.0).then_some(())
    });
    let db = rusqlite_count(&store);
    eventually(60, "all 30,000 readings in the store", || {
        (db() == total).then_some(())
    });
    drop(agg);
}

/// Count readings in the store of `dir` by opening it read-only.
fn rusqlite_count(dir: &std::path::Path) -> impl Fn() -> u64 {
    let dir = dir.to_path_buf();
    move || {
        dustwatch::store::SqliteReader::open(&dir, Default::default())
            .ok()
            .and_then(|r| r.counts().ok())
            .map_or(0, |c| c.readings)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_stamped_2099_does_not_freeze_the_city_level() {
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut c = config(port, data.path());
    c.http.write_token = Some("secret".into());
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&c, vec![site("a")], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    let root = TopicRoot::default();
    publish_all(port, "fleet", history(&["a"], 2)).await;
    // A level from 2099: on its own it would outrank every later level in the timeline.
    publish_all(
        port,
        "intruder",
        vec![(
            root.city_level(),
            br#"{"level":"red","ts":4102358400000}"#.to_vec(),
        )],
    )
    .await;
    let m = agg.metrics.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "the 2099 level dead-lettered", || {
            (m.rejected(RejectReason::FutureTimestamp) == 1).then_some(())
        })
    })
    .await
    .expect("wait");
    let http = agg.http_addr.port();
    tokio::task::spawn_blocking(move || {
        ureq::put(&format!("http://127.0.0.1:{http}/api/city/level"))
            .set("Authorization", "Bearer secret")
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({"level": "orange", "ts": T0 + 3_600_000}).to_string())
            .expect("level accepted");
        eventually(30, "the office's level in force", || {
            let (_, body) = http_get(http, "/api/city/level");
            body.contains("orange").then_some(())
        });
    })
    .await
    .expect("level");
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}
