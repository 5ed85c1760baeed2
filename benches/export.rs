//! Does the InfluxDB exporter keep up with ingest? One run, on this machine: a real broker
//! (embedded rumqttd), the aggregator as a library, VictoriaMetrics taking the v2 write API.
//!
//! 1. Live: publish N readings as fast as the broker takes them; time until all are stored
//!    (ingest rate) and until all are exported (export rate). Ratio >= ~1 means the exporter
//!    keeps pace (it finishes within a flush interval of ingest).
//! 2. Backlog drain: the server is down while N more readings are ingested, then comes back;
//!    time to drain the backlog = the exporter's own throughput.
//!
//! `cargo bench -p dustwatch --bench export` (env `EXPORT_BENCH_N`, default 100 000).

#[path = "../tests/support/mod.rs"]
mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch::export::InfluxConfig;
use dustwatch::metrics::Metrics;
use dustwatch_protocol::TopicRoot;
use dustwatch_testkit::{embedded_broker, VictoriaMetrics};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{publish_all, reading};
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 50;
/// Concurrent publishing clients (each a share of the devices), so the broker, not one
/// publisher's in-flight window, sets the pace.
const PUBLISHERS: usize = 5;

fn payloads(publisher: usize, from: u64, to: u64) -> Vec<(String, Vec<u8>)> {
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000i64;
    let mut out = Vec::new();
    for seq in from..to {
        for d in (0..DEVICES).filter(|d| d % PUBLISHERS == publisher) {
            let r = reading(t0 + seq as i64 * 60_000, seq, 1);
            out.push((root.reading("bench", &format!("dev{d}")), r.encode()));
        }
    }
    out
}

/// Publish readings seq `from..to` of every device from `PUBLISHERS` clients at once.
async fn publish(port: u16, tag: &str, from: u64, to: u64) {
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let id = format!("{tag}-{p}");
            tokio::spawn(async move { publish_all(port, &id, payloads(p, from, to)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher");
    }
}

async fn until(what: &str, f: impl Fn() -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Instant::now()
}

#[tokio::main]
async fn main() {
    let Some(mut vm) = VictoriaMetrics::start() else {
        eprintln!("victoria-metrics not installed: no export benchmark");
        return;
    };
    let n: u64 = std::env::var("EXPORT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let per_device = (n / DEVICES as u64).max(1);
    let n = per_device * DEVICES as u64;
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.mqtt.url = format!("mqtt://127.0.0.1:{port}");
    config.mqtt.client_id = "export-bench".into();
    config.http.listen = "127.0.0.1:0".parse().expect("literal");
    config.store.data_dir = data.path().to_path_buf();
    let influx = InfluxConfig {
        url: vm.url(),
        max_backoff_s: 1,
        ..Default::default()
    };
    let (batch_size, flush_ms) = (influx.batch_size, influx.flush_interval_ms);
    config.influx = Some(influx);
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config, vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    let m: Arc<Metrics> = agg.metrics.clone();
    until("subscribed", || m.mqtt_subscribed.load(Relaxed) == 1).await;

    // 1. Live.
    let t0 = Instant::now();
    let publisher = tokio::spawn(publish(port, "bench-pub-1", 0, per_device));
    let stored = until("stored", || m.stored.load(Relaxed) >= n).await;
    let exported = until("exported", || m.export_lines.load(Relaxed) >= n).await;
    publisher.await.expect("publisher");
    let ingest_rate = n as f64 / (stored - t0).as_secs_f64();
    let live_rate = n as f64 / (exported - t0).as_secs_f64();

    // 2. Backlog drain.
    vm.stop();
    let base = m.stored.load(Relaxed);
    publish(port, "bench-pub-2", per_device, 2 * per_device).await;
    until("stored during outage", || {
        m.stored.load(Relaxed) >= base + n
    })
    .await;
    until("backlog seen", || {
        m.export_backlog.load(Relaxed) as u64 >= n
    })
    .await;
    let exported_before = m.export_lines.load(Relaxed);
    vm.restart();
    let t1 = Instant::now();
    until("backlog drained", || {
        m.export_lines.load(Relaxed) >= exported_before + n
    })
    .await;
    let drain_rate = n as f64 / t1.elapsed().as_secs_f64();

    println!("export benchmark: {n} readings, {DEVICES} devices, {PUBLISHERS} publishers, batch {batch_size} lines, flush {flush_ms} ms, VictoriaMetrics on localhost");
    println!("  ingest (publish -> committed)     {ingest_rate:>10.0} readings/s");
    println!(
        "  export, live (publish -> exported) {live_rate:>9.0} lines/s   ratio to ingest {:.2}",
        live_rate / ingest_rate
    );
    println!(
        "  export, backlog drain              {drain_rate:>9.0} lines/s   ratio to ingest {:.2}",
        drain_rate / ingest_rate
    );
    println!(
        "  export errors during the outage: {}",
        m.export_errors.load(Relaxed)
    );
    shutdown.cancel();
    let _ = agg.wait().await;
}
