//! Alerts end to end over real sockets: readings in through a real broker, the alert out on its
//! retained topic exactly once per state change, acknowledged over HTTP with the bearer token,
//! and the city level set over HTTP coming back through the broker into the timeline.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::{Phase, SiteInfo, SiteKind, TopicRoot};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;
use support::*;
use tokio_util::sync::CancellationToken;

fn site(id: &str, kind: SiteKind) -> SiteInfo {
    SiteInfo {
        id: id.into(),
        name: format!("Site {id}"),
        street: "Liuzhai".into(),
        kind,
        phase: Phase::Earthwork,
        lat: None,
        lon: None,
        reference: Some("ref".into()),
    }
}

async fn alerts_flow(broker_port: u16) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
    config.mqtt.client_id = format!("alerts-test-{broker_port}");
    config.http.listen = "127.0.0.1:0".parse().expect("literal");
    config.http.write_token = Some("secret".into());
    config.store.data_dir = data.path().to_path_buf();
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(
        &config,
        vec![
            site("s1", SiteKind::Construction),
            site("ref", SiteKind::Reference),
        ],
        shutdown.clone(),
    )
    .await
    .expect("starts");
    wait_subscribed(&agg).await;

    // An observer of the alert topics, as the office's other systems would be.
    let mut opts = MqttOptions::new(format!("observer-{broker_port}"), "127.0.0.1", broker_port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (observer, mut events) = AsyncClient::new(opts, 100);
    observer
        .subscribe("dust/v1/alerts/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
            }
        }
    });

    // Two hours: the first clean, the second at +200 over the reference; then 10 minutes more
    // so the second hour is past the allowed lateness.
    let root = TopicRoot::default();
    let t0 = support::acting::T0; // 2017-01-05 08:00 Asia/Shanghai
    let msgs = support::acting::readings_of(&["s1"], 0, 130);
    publish_all(broker_port, &format!("fleet-{broker_port}"), msgs).await;

    let port = agg.http_addr.port();
    let alerts: serde_json::Value = tokio::task::spawn_blocking(move || {
        eventually(30, "the PM10 alert", || {
            let (_, body) = http_get(port, "/api/alerts?state=active");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            v.as_array()?
                .iter()
                .any(|a| a["rule"] == "pm10-hourly")
                .then_some(v)
        })
    })
    .await
    .expect("wait");
    let alert = alerts
        .as_array()
        .and_then(|a| a.iter().find(|a| a["rule"] == "pm10-hourly"))
        .expect("alert")
        .clone();
    assert_eq!(alert["site"], "s1");
    assert_eq!(alert["kind"], "window");
    // Site 300 minus the reference mean (100 and 101 alternating) over the hour.
    assert_eq!(alert["evidence"]["value"], 199.5);
    let id = alert["id"].as_i64().expect("id");

    // Site status follows the open alert.
    let (_, body) = tokio::task::spawn_blocking(move || http_get(port, "/api/sites"))
        .await
        .expect("get");
    let sites: serde_json::Value = serde_json::from_str(&body).expect("json");
    let s1 = sites
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "s1"))
        .expect("s1");
    assert_eq!(s1["status"], "violation");

    // Acknowledge: refused without the token, accepted with it.
    let url = format!("http://127.0.0.1:{port}/api/alerts/{id}/ack");
    let denied = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            ureq::post(&url)
                .set("Content-Type", "application/json")
                .send_string(&serde_json::json!({"by": "x", "comment": "y"}).to_string())
                .map(|r| r.status())
                .unwrap_or_else(|e| match e {
                    ureq::Error::Status(c, _) => c,
                    other => panic!("{other}"),
                })
        }
    })
    .await
    .expect("post");
    assert_eq!(denied, 401);
    let acked: serde_json::Value = tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .set("Authorization", "Bearer secret")
            .set("Content-Type", "application/json")
            .send_string(
                &serde_json::json!({"by": "Inspector Wang", "comment": "site ordered to stop"})
                    .to_string(),
            )
            .expect("ack accepted")
            .into_string()
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
            .expect("json")
    })
    .await
    .expect("post");
    assert_eq!(acked["acknowledged"], true);
    assert_eq!(acked["ack_by"], "Inspector Wang");

    // City level over HTTP: published, comes back through the broker, stored in the timeline.
    let level_url = format!("http://127.0.0.1:{port}/api/city/level");
    tokio::task::spawn_blocking(move || {
        ureq::put(&level_url)
            .set("Authorization", "Bearer secret")
            .set("Content-Type", "application/json")
            .send_string(
                &serde_json::json!({"level": "orange", "ts": t0 + 200 * 60_000}).to_string(),
            )
            .expect("level accepted");
        eventually(30, "level back through the broker", || {
            let (_, body) = http_get(port, "/api/city/level");
            body.contains("orange").then_some(())
        });
    })
    .await
    .expect("level");

    // Each state change went out once on the retained alert topic: opened, acknowledged.
    let topic = root.alert("s1", "pm10-hourly");
    let mut changes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while changes.len() < 2 {
        let (t, payload) = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .expect("alert messages arrive")
            .expect("observer alive");
        if t == topic {
            let v: serde_json::Value = serde_json::from_slice(&payload).expect("json");
            changes.push(v["change"].as_str().unwrap_or("").to_string());
        }
    }
    // Nothing else for this alert arrives (an update is not a state change).
    let extra = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match seen.recv().await {
                Some((t, _)) if t == topic => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert_eq!(changes, vec!["opened", "acknowledged"]);
    assert!(!extra, "no state change published twice");

    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lifecycle_over_embedded_broker() {
    let broker = embedded_broker();
    alerts_flow(broker.addr().port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lifecycle_over_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    alerts_flow(m.port()).await;
}
