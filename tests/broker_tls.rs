//! MQTT over TLS (`mqtts://`) against a real Mosquitto TLS listener, with a CA, server and client
//! certificates the test makes: simulated devices publish over TLS, the aggregator's ingest
//! stores what they send, its publisher reaches the broker over TLS, and a client that does not
//! trust the broker's CA is refused.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch::ingest::session::{Session, SessionError, SessionOptions};
use dustwatch::publish::Publisher;
use dustwatch_mqtt::{ConnectError, TlsSettings};
use dustwatch_protocol::{CityLevel, EventTime, Level, TopicRoot};
use dustwatch_testkit::TestPki;
use std::time::Duration;
use support::*;
use tokio_util::sync::CancellationToken;

fn tls_config(port: u16, pki: &TestPki, data: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.mqtt.url = format!("mqtts://127.0.0.1:{port}");
    c.mqtt.client_id = format!("tls-test-{port}");
    c.mqtt.ca_file = Some(pki.ca.clone());
    c.mqtt.client_cert = Some(pki.client_cert.clone());
    c.mqtt.client_key = Some(pki.client_key.clone());
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_published_over_tls_are_stored() {
    if !Mosquitto::available() {
        return;
    }
    let pki = TestPki::generate();
    // The broker also demands a client certificate: both sides present one.
    let Some(broker) = Mosquitto::start_tls(&pki, true) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let config = tls_config(broker.port(), &pki, data.path());
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config, vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;

    let scenario = sensors_sim::Scenario::load("steady").expect("shipped scenario");
    let options = sensors_sim::SimOptions {
        tls: Some(TlsSettings {
            ca_file: Some(pki.ca.clone()),
            client_cert: Some(pki.client_cert.clone()),
            client_key: Some(pki.client_key.clone()),
        }),
        ..fleet::three_steady_devices(broker.port(), "tls-sim")
    };
    let summary = sensors_sim::Sim::new(scenario, options)
        .run(CancellationToken::new())
        .await
        .expect("the fleet runs over TLS");
    assert!(summary.acked >= 3 * 59, "{summary:?}");
    wait_readings(&agg, summary.acked).await;

    // The publisher (rumqttc) over TLS: a level it publishes comes back through ingest.
    let (publisher, task) =
        Publisher::start(&config.mqtt, shutdown.clone()).expect("publisher starts");
    let level = CityLevel {
        level: Level::Orange,
        ts: EventTime(1_483_286_400_000),
    };
    let payload = serde_json::to_vec(&level).expect("encode");
    assert!(publisher.publish(TopicRoot::default().city_level(), payload, true));
    fleet::wait_city_level(&agg, Level::Orange, "the level published over TLS stored").await;
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_brokers_ca_is_refused() {
    if !Mosquitto::available() {
        return;
    }
    let pki = TestPki::generate();
    let Some(broker) = Mosquitto::start_tls(&pki, false) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let good = tls_config(broker.port(), &pki, data.path());
    let session = |config: &Config| SessionOptions {
        connect: config
            .mqtt
            .connect_options(&config.mqtt.url)
            .expect("options"),
        connect_timeout: Duration::from_secs(10),
    };
    Session::connect(&session(&good), "dust/v1/#")
        .await
        .expect("the right CA connects");

    let mut wrong = good.clone();
    wrong.mqtt.ca_file = Some(pki.other_ca.clone());
    match Session::connect(&session(&wrong), "dust/v1/#").await {
        Err(SessionError::Connect(ConnectError::Handshake { .. })) => {}
        Err(e) => panic!("expected a TLS handshake failure, got {e}"),
        Ok(_) => panic!("a broker certificate from another CA was accepted"),
    }
    // The rumqttc path (publisher, `dustwatch level set`) checks the same way.
    let err = dustwatch::publish::publish_once(
        &wrong.mqtt.url,
        &wrong.mqtt,
        &TopicRoot::default().city_level(),
        b"{}".to_vec(),
    )
    .await
    .expect_err("the wrong CA is refused");
    assert!(
        err.to_string().to_lowercase().contains("tls") || err.to_string().contains("certificate"),
        "{err}"
    );
}
