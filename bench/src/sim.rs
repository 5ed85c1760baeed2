//! `dustwatch-bench sim`: the simulator's scale figures, from one run against one broker.
//!
//! 1. Steady load: N devices (default 10,000) at one reading per second each, real time; the
//!    figures are this process's CPU (getrusage, cores = CPU seconds / wall seconds) and RSS
//!    (/proc/self/status) over the measured window. The broker runs in a child process
//!    (Mosquitto, the reference broker, when installed; else the embedded rumqttd) so its cost
//!    is not counted as the simulator's.
//! 2. Throughput: a plain rumqttc publisher loop against the simulator at `--speed max`, on the
//!    same broker, with the same number of connections, QoS 1, in-flight window and payload
//!    size; in alternating rounds (plain, sim, plain, sim, ...) so that neither side always gets
//!    the quieter moment of a shared machine. The ratio is sim / plain over all rounds.

use crate::probe;
use dustwatch_protocol::Reading;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use sensors_sim::{Scenario, Sim, SimOptions, Speed};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod broker;
mod report;
pub use broker::{run_embedded as run_embedded_broker, BrokerProcess};
pub use report::{BenchReport, Round};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub host: String,
    pub port: u16,
    /// Which broker that is, for the report.
    pub broker: String,
    /// Devices of the steady phase. Default 10,000.
    pub devices: u32,
    /// Devices power on over this much time, as a fleet does (no connect storm). Default 5 s.
    pub power_on: Duration,
    /// Warm-up before measuring the steady phase (connects, first intervals). Default 15 s.
    pub warmup: Duration,
    /// Measured window of the steady phase. Default 20 s.
    pub measure: Duration,
    /// Connections of the throughput phase (both sides). Default 50.
    pub connections: u32,
    /// Messages per side and round in the throughput phase. Default 200,000.
    pub messages: u64,
    /// Throughput rounds (each: plain, then sim). Default 2.
    pub rounds: u32,
    /// In-flight QoS 1 window per connection, both sides (rumqttc's default). Default 100.
    pub inflight: u16,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            host: "127.0.0.1".into(),
            port: 1883,
            broker: "external".into(),
            devices: 10_000,
            power_on: Duration::from_secs(5),
            warmup: Duration::from_secs(15),
            measure: Duration::from_secs(20),
            connections: 50,
            messages: 200_000,
            rounds: 2,
            inflight: 100,
        }
    }
}

fn sim_options(o: &BenchOptions, prefix: &str) -> SimOptions {
    SimOptions {
        host: o.host.clone(),
        port: o.port,
        client_prefix: prefix.into(),
        seed: 1,
        ..Default::default()
    }
}

/// A reading as the `steady` devices send it (every field measured), for the plain loop.
fn reading_payload() -> Vec<u8> {
    Reading {
        ts: dustwatch_protocol::EventTime(1_483_286_460_000),
        seq: 12_345,
        boot: 1,
        interval_s: 1,
        pm25: Some(92.4),
        pm10: Some(131.7),
        tsp: Some(168.2),
        noise_dba: Some(61.3),
        temp_c: Some(-1.4),
        rh_pct: Some(61.8),
        pressure_kpa: Some(102.35),
        wind_ms: Some(1.9),
        wind_deg: Some(45.0),
        flags: Default::default(),
        ..Reading::default()
    }
    .encode()
}

pub async fn run(o: &BenchOptions) -> anyhow::Result<BenchReport> {
    // Phase 1: steady load in real time.
    let steady = Scenario::load("steady")?;
    let opts = SimOptions {
        speed: Speed::Factor(1.0),
        devices: Some(o.devices),
        rate: Some(1.0),
        connect_spread: o.power_on.min(o.warmup),
        ..sim_options(o, "bench-steady")
    };
    let sim = Sim::new(steady, opts);
    let stats = sim.stats();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(sim.run(stop.clone()));
    tokio::time::sleep(o.warmup).await;
    // The window starts once the fleet is in and the readings buffered while connecting are
    // delivered (at most a minute more), so it measures the steady state, not the catch-up.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(60)
        && (stats.connected.load(Ordering::Relaxed) < u64::from(o.devices)
            || stats.buffered.load(Ordering::Relaxed) > u64::from(o.devices))
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled_after = o.warmup + settle.elapsed();
    let (cpu0, acked0, gen0, t0) = (
        probe::cpu_secs(),
        stats.acked.load(Ordering::Relaxed),
        stats.generated.load(Ordering::Relaxed),
        Instant::now(),
    );
    let mut peak_rss = 0.0;
    let mut rss = 0.0;
    while t0.elapsed() < o.measure {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss = probe::rss_mib();
        peak_rss = probe::peak_rss_mib();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = probe::cpu_secs() - cpu0;
    let acked = stats.acked.load(Ordering::Relaxed) - acked0;
    let generated = stats.generated.load(Ordering::Relaxed) - gen0;
    let connected = stats.connected.load(Ordering::Relaxed);
    let connect_failures = stats.connect_failures.load(Ordering::Relaxed);
    let buffered = stats.buffered.load(Ordering::Relaxed);
    let dropped = stats.dropped.load(Ordering::Relaxed);
    stop.cancel();
    let _ = handle.await;

    // Phase 2: a plain rumqttc loop, then the simulator at --speed max, in rounds.
    let payload = reading_payload();
    let per_device = o.messages / u64::from(o.connections.max(1));
    let mut rounds = Vec::new();
    let (mut plain_n, mut plain_s, mut sim_n, mut sim_s) = (0u64, 0.0, 0u64, 0.0);
    for round in 0..o.rounds.max(1) {
        let c0 = probe::cpu_secs();
        let (n, secs) = plain_loop(o, &payload, round).await;
        let plain_cpu = probe::cpu_secs() - c0;
        // One-second intervals (one sample per reading), the same window as the plain loop.
        let opts = SimOptions {
            speed: Speed::Max,
            devices: Some(o.connections),
            rate: Some(1.0),
            inflight: o.inflight,
            duration: Some(Duration::from_secs(per_device)),
            connect_spread: Duration::ZERO,
            ..sim_options(o, &format!("bench-max-{round}"))
        };
        let c0 = probe::cpu_secs();
        let summary = Sim::new(Scenario::load("steady")?, opts)
            .run(CancellationToken::new())
            .await?;
        let sim_cpu = probe::cpu_secs() - c0;
        rounds.push(Round {
            plain_msgs_per_s: n as f64 / secs,
            sim_msgs_per_s: summary.rate,
            plain_cpu_us_per_msg: plain_cpu * 1e6 / n.max(1) as f64,
            sim_cpu_us_per_msg: sim_cpu * 1e6 / summary.acked.max(1) as f64,
        });
        plain_n += n;
        plain_s += secs;
        sim_n += summary.acked;
        sim_s += summary.elapsed_s;
    }
    let plain = plain_n as f64 / plain_s.max(1e-9);
    let sim_rate = sim_n as f64 / sim_s.max(1e-9);
    Ok(BenchReport {
        broker: o.broker.clone(),
        steady_devices: o.devices,
        steady_connected: connected,
        steady_connect_failures: connect_failures,
        steady_target_per_s: f64::from(o.devices),
        steady_acked_per_s: acked as f64 / wall,
        steady_generated_per_s: generated as f64 / wall,
        steady_settled_s: settled_after.as_secs_f64(),
        steady_buffered: buffered,
        steady_dropped: dropped,
        steady_cpu_cores: cpu / wall,
        steady_rss_mb: rss,
        steady_peak_rss_mb: peak_rss,
        connections: o.connections,
        inflight: o.inflight,
        payload_bytes: payload.len(),
        rounds,
        plain_msgs_per_s: plain,
        sim_max_msgs_per_s: sim_rate,
        ratio: sim_rate / plain.max(1e-9),
    })
}

/// The yardstick: `connections` clients each publishing `messages / connections` QoS 1 messages
/// in a loop, counting PUBACKs. Returns (acknowledged messages, seconds) over the whole run.
async fn plain_loop(o: &BenchOptions, payload: &[u8], round: u32) -> (u64, f64) {
    let n = u64::from(o.connections.max(1));
    let per = o.messages / n;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let mut mo = MqttOptions::new(format!("bench-plain-{round}-{c}"), o.host.clone(), o.port);
        mo.set_keep_alive(Duration::from_secs(30));
        mo.set_inflight(o.inflight);
        let (client, mut eventloop) = AsyncClient::new(mo, usize::from(o.inflight));
        let acked = acked.clone();
        let payload = payload.to_vec();
        // Same topic shape and length as a device's.
        let topic = format!("dust/v1/bench-plain-{c:05}/d1/reading");
        tasks.spawn(async move {
            let publisher = tokio::spawn(async move {
                for _ in 0..per {
                    if client
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                client
            });
            let mut mine = 0;
            while mine < per {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        mine += 1;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            if let Ok(client) = publisher.await {
                let _ = client.try_disconnect();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (acked.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}
