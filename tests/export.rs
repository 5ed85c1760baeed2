//! Export to a real server taking the InfluxDB v2 write API (VictoriaMetrics, started on a free
//! port with a temporary data directory), through the aggregator started as a library and a real
//! broker. Points are read back through VictoriaMetrics' own export API.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch::export::InfluxConfig;
use dustwatch::metrics::Metrics;
use dustwatch_protocol::{Phase, SiteInfo, SiteKind, TopicRoot};
use dustwatch_testkit::VictoriaMetrics;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use support::*;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_483_228_800_000; // 2017-01-01T00:00:00Z
const SITE: &str = "site-a";

fn config(broker_port: u16, data: &std::path::Path, vm: &VictoriaMetrics) -> Config {
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
    c.mqtt.client_id = format!("export-test-{broker_port}");
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c.influx = Some(InfluxConfig {
        url: vm.url(),
        org: "office".into(),
        bucket: "dustwatch".into(),
        batch_size: 700,
        flush_interval_ms: 100,
        timeout_s: 10,
        max_backoff_s: 1,
        ..Default::default()
    });
    c
}

fn site() -> SiteInfo {
    SiteInfo {
        id: SITE.into(),
        name: "Site A".into(),
        street: "Huiji Road, East".into(),
        kind: SiteKind::Construction,
        phase: Phase::Earthwork,
        lat: None,
        lon: None,
        reference: None,
    }
}

/// Readings seq `from..to` of `devices` devices.
fn payloads(devices: usize, from: u64, to: u64) -> Vec<(String, Vec<u8>)> {
    let root = TopicRoot::default();
    let mut out = Vec::new();
    for seq in from..to {
        for d in 0..devices {
            let r = reading(T0 + seq as i64 * 60_000, seq, 1);
            out.push((root.reading(SITE, &format!("dev{d}")), r.encode()));
        }
    }
    out
}

async fn start(config: &Config, shutdown: &CancellationToken) -> Aggregator {
    let agg = Aggregator::start(config, vec![site()], shutdown.clone())
        .await
        .expect("aggregator starts");
    let m = agg.metrics.clone();
    wait(60, "subscribed", move || {
        (m.mqtt_subscribed.load(Relaxed) == 1).then_some(())
    })
    .await;
    agg
}

/// `eventually` off the async workers.
async fn wait<T: Send + 'static>(
    secs: u64,
    what: &'static str,
    f: impl FnMut() -> Option<T> + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || eventually(secs, what, f))
        .await
        .expect("wait")
}

async fn wait_exported(m: &Arc<Metrics>, lines: u64) {
    let m = m.clone();
    wait(120, "every line exported", move || {
        (m.export_lines.load(Relaxed) >= lines && m.export_backlog.load(Relaxed) == 0).then_some(())
    })
    .await;
}

/// One series as VictoriaMetrics exports it.
#[derive(Debug, serde::Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<f64>,
    timestamps: Vec<i64>,
}

fn vm_get(port: u16, path_and_query: &str) -> String {
    let url = format!("http://127.0.0.1:{port}{path_and_query}");
    match ureq::get(&url)
        .timeout(std::time::Duration::from_secs(30))
        .call()
    {
        Ok(r) => r.into_string().expect("body"),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// Every series whose name starts with `prefix`, keyed by (name, device).
fn vm_export(port: u16, prefix: &str) -> BTreeMap<(String, String), Vec<(i64, f64)>> {
    vm_get(port, "/internal/force_flush");
    let body = vm_get(
        port,
        &format!("/api/v1/export?match[]=%7B__name__%3D~%22{prefix}.*%22%7D"),
    );
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let s: Series = serde_json::from_str(line).expect("export line is JSON");
        assert_eq!(
            s.metric.get("site").map(String::as_str),
            Some(SITE),
            "{s:?}"
        );
        assert_eq!(
            s.metric.get("street").map(String::as_str),
            Some("Huiji Road, East"),
            "{s:?}"
        );
        assert_eq!(
            s.metric.get("kind").map(String::as_str),
            Some("construction")
        );
        let mut points: Vec<(i64, f64)> = s.timestamps.into_iter().zip(s.values).collect();
        points.sort_by_key(|p| p.0);
        let key = (
            s.metric["__name__"].clone(),
            s.metric.get("device").cloned().unwrap_or_default(),
        );
        out.entry(key).or_insert_with(Vec::new).extend(points);
    }
    out
}

/// The points a device's `name` series must have for seq `0..to`: each exactly once.
fn expected(name: &str, to: u64) -> Vec<(i64, f64)> {
    (0..to)
        .map(|seq| {
            let v = match name {
                "reading_pm25" => (seq % 500) as f64,
                "reading_pm10" => (seq % 700) as f64 + 1.0,
                "reading_noise_dba" => 55.0,
                "reading_seq" => seq as f64,
                "reading_boot" => 1.0,
                "reading_interval_s" => 60.0,
                other => panic!("unexpected series {other}"),
            };
            (T0 + seq as i64 * 60_000, v)
        })
        .collect()
}

fn check_all(got: &BTreeMap<(String, String), Vec<(i64, f64)>>, devices: usize, to: u64) {
    let names = [
        "reading_boot",
        "reading_interval_s",
        "reading_noise_dba",
        "reading_pm10",
        "reading_pm25",
        "reading_seq",
    ];
    assert_eq!(
        got.len(),
        names.len() * devices,
        "series: {:?}",
        got.keys().collect::<Vec<_>>()
    );
    for name in names {
        for d in 0..devices {
            let key = (name.to_string(), format!("dev{d}"));
            let points = got.get(&key).unwrap_or_else(|| panic!("missing {key:?}"));
            assert_eq!(
                points.len(),
                to as usize,
                "{key:?}: every point exactly once"
            );
            assert_eq!(points, &expected(name, to), "{key:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_arrive_with_values_tags_and_timestamps() {
    let Some(vm) = VictoriaMetrics::start() else {
        return;
    };
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = start(&config(port, data.path(), &vm), &shutdown).await;
    let (devices, per_device) = (4, 300);
    let root = TopicRoot::default();
    let mut msgs = payloads(devices, 0, per_device);
    msgs.push((
        root.event(SITE, "dev0"),
        format!(
            r#"{{"ts":{},"seq":9000,"boot":1,"kind":"sprinkler_on"}}"#,
            T0 + 90_000
        )
        .into_bytes(),
    ));
    msgs.push((
        root.city_level(),
        format!(r#"{{"level":"orange","ts":{}}}"#, T0 + 30_000).into_bytes(),
    ));
    publish_all(port, "export-pub", msgs).await;
    // Readings, the event and the city level (and any alert transitions the rules raised).
    wait_exported(&agg.metrics, devices as u64 * per_device + 2).await;

    check_all(&vm_export(vm.port(), "reading_"), devices, per_device);
    let events = vm_export(vm.port(), "event_");
    assert_eq!(
        events.get(&("event_seq".to_string(), "dev0".to_string())),
        Some(&vec![(T0 + 90_000, 9000.0)]),
        "{events:?}"
    );
    let level = vm_get(
        vm.port(),
        "/api/v1/export?match[]=city_level_code%7Blevel%3D%22orange%22%7D",
    );
    let level: Series = serde_json::from_str(level.trim()).expect("one city level series");
    assert_eq!(
        (level.timestamps, level.values),
        (vec![T0 + 30_000], vec![3.0])
    );
    let (_, metrics) = http_get(agg.http_addr.port(), "/metrics");
    let lines = metric(&metrics, "dustwatch_export_lines_total").expect("lines metric");
    assert!(lines >= (devices as u64 * per_device + 2) as f64, "{lines}");
    assert_eq!(metric(&metrics, "dustwatch_export_backlog"), Some(0.0));
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_restart_deliver_every_point_exactly_once() {
    let Some(mut vm) = VictoriaMetrics::start() else {
        return;
    };
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let config = config(port, data.path(), &vm);
    let devices = 5;

    // Phase 1: the server is up.
    let shutdown = CancellationToken::new();
    let agg = start(&config, &shutdown).await;
    publish_all(port, "export-pub-1", payloads(devices, 0, 200)).await;
    wait_exported(&agg.metrics, devices as u64 * 200).await;

    // Phase 2: the server is down; ingestion goes on, the backlog waits in SQLite.
    vm.stop();
    publish_all(port, "export-pub-2", payloads(devices, 200, 500)).await;
    let m = agg.metrics.clone();
    wait(60, "readings stored and export failing", move || {
        (m.stored.load(Relaxed) == devices as u64 * 500 && m.export_errors.load(Relaxed) >= 1)
            .then_some(())
    })
    .await;
    let http = agg.http_addr.port();
    // The whole outage is reported as backlog (the gauge refreshes at each retry).
    let outage = (devices * 300) as f64;
    wait(30, "backlog reported", move || {
        let (_, body) = http_get(http, "/metrics");
        (metric(&body, "dustwatch_export_backlog") == Some(outage)).then_some(())
    })
    .await;

    // Phase 3: the aggregator restarts during the outage; the new process resumes at the
    // cursor once the server is back.
    shutdown.cancel();
    agg.wait().await.expect("clean stop during the outage");
    let shutdown = CancellationToken::new();
    let agg = start(&config, &shutdown).await;
    vm.restart();
    publish_all(port, "export-pub-3", payloads(devices, 500, 600)).await;
    wait_exported(&agg.metrics, devices as u64 * 400).await;
    assert_eq!(
        agg.metrics.export_lines.load(Relaxed),
        devices as u64 * 400,
        "the new process exports only what the old one had not"
    );

    check_all(&vm_export(vm.port(), "reading_"), devices, 600);
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}
