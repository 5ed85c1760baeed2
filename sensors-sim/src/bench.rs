//! `sensors-sim bench`: the scale figures of issue 2, from one run against one broker.
//!
//! 1. Steady load: N devices (default 10,000) at one reading per second each, real time; the
//!    figures are this process's CPU (getrusage, cores = CPU seconds / wall seconds) and RSS
//!    (/proc/self/status) over the measured window. The broker runs in a child process so its
//!    cost is not counted as the simulator's.
//! 2. Throughput: a plain rumqttc publisher loop (the same number of connections, QoS 1, a
//!    reading-sized payload) against the simulator at `--speed max`, on the same broker, one
//!    after the other; the ratio is sim / plain.

use crate::{Scenario, Sim, SimOptions, Speed};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub host: String,
    pub port: u16,
    /// Devices of the steady phase. Default 10,000.
    pub devices: u32,
    /// Warm-up before measuring the steady phase (connects, first intervals). Default 10 s.
    pub warmup: Duration,
    /// Measured window of the steady phase. Default 20 s.
    pub measure: Duration,
    /// Connections of the throughput phase (both sides). Default 50.
    pub connections: u32,
    /// Messages per side in the throughput phase. Default 200,000.
    pub messages: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            host: "127.0.0.1".into(),
            port: 1883,
            devices: 10_000,
            warmup: Duration::from_secs(10),
            measure: Duration::from_secs(20),
            connections: 50,
            messages: 200_000,
        }
    }
}

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("benchmark scenario: {0}")]
    Scenario(#[from] crate::ScenarioError),
    #[error("benchmark run: {0}")]
    Sim(#[from] crate::SimError),
}

/// The figures, printed as a table and as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub steady_devices: u32,
    pub steady_target_per_s: f64,
    pub steady_acked_per_s: f64,
    pub steady_cpu_cores: f64,
    pub steady_rss_mb: f64,
    pub steady_peak_rss_mb: f64,
    pub connections: u32,
    pub plain_msgs_per_s: f64,
    pub sim_max_msgs_per_s: f64,
    pub ratio: f64,
}

impl BenchReport {
    pub fn print(&self) {
        println!("sensors-sim bench (broker in a child process; figures are this process)");
        println!(
            "steady   {} devices x 1 reading/s: target {:.0}/s, acked {:.0}/s",
            self.steady_devices, self.steady_target_per_s, self.steady_acked_per_s
        );
        println!(
            "         CPU {:.2} cores (budget 1.00, ratio {:.2}), RSS {:.0} MB, peak {:.0} MB (budget 300, ratio {:.2})",
            self.steady_cpu_cores,
            self.steady_cpu_cores / 1.0,
            self.steady_rss_mb,
            self.steady_peak_rss_mb,
            self.steady_peak_rss_mb / 300.0
        );
        println!(
            "max      {} connections, QoS 1: plain rumqttc loop {:.0} msg/s, sim --speed max {:.0} msg/s, ratio {:.2} (goal >= 0.90)",
            self.connections, self.plain_msgs_per_s, self.sim_max_msgs_per_s, self.ratio
        );
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// (VmRSS, VmHWM) of this process in MB.
pub fn rss_mb() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
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

pub async fn run(o: &BenchOptions) -> Result<BenchReport, BenchError> {
    // Phase 1: steady load in real time.
    let steady = Scenario::load("steady")?;
    let opts = SimOptions {
        speed: Speed::Factor(1.0),
        devices: Some(o.devices),
        rate: Some(1.0),
        connect_spread: Duration::from_secs(3).min(o.warmup),
        ..sim_options(o, "bench-steady")
    };
    let sim = Sim::new(steady, opts);
    let stats = sim.stats();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(sim.run(stop.clone()));
    tokio::time::sleep(o.warmup).await;
    let (cpu0, acked0, t0) = (
        cpu_seconds(),
        stats.acked.load(Ordering::Relaxed),
        Instant::now(),
    );
    let mut peak_rss: f64 = 0.0;
    let mut rss = 0.0;
    while t0.elapsed() < o.measure {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss = rss_mb().0;
        peak_rss = peak_rss.max(rss);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let acked = stats.acked.load(Ordering::Relaxed) - acked0;
    stop.cancel();
    let _ = handle.await;

    // Phase 2: a plain rumqttc loop, then the simulator at --speed max.
    let plain = plain_loop(o).await;
    let per_device = o.messages / u64::from(o.connections.max(1));
    // One-second intervals (one sample per reading) and the same in-flight window as the plain
    // loop's rumqttc default, so both sides publish the same kind of stream.
    let opts = SimOptions {
        speed: Speed::Max,
        devices: Some(o.connections),
        rate: Some(1.0),
        inflight: 100,
        duration: Some(Duration::from_secs(per_device)),
        connect_spread: Duration::ZERO,
        ..sim_options(o, "bench-max")
    };
    let summary = Sim::new(Scenario::load("steady")?, opts)
        .run(CancellationToken::new())
        .await?;
    let sim_rate = summary.rate;
    Ok(BenchReport {
        steady_devices: o.devices,
        steady_target_per_s: f64::from(o.devices),
        steady_acked_per_s: acked as f64 / wall,
        steady_cpu_cores: cpu / wall,
        steady_rss_mb: rss,
        steady_peak_rss_mb: peak_rss,
        connections: o.connections,
        plain_msgs_per_s: plain,
        sim_max_msgs_per_s: sim_rate,
        ratio: sim_rate / plain.max(1e-9),
    })
}

/// The yardstick: `connections` clients each publishing `messages / connections` QoS 1 messages
/// in a loop, counting PUBACKs. Acknowledged messages per second over the whole run.
async fn plain_loop(o: &BenchOptions) -> f64 {
    let payload = br#"{"ts":1483286460000,"seq":1,"boot":1,"interval_s":60,"pm25":245.3,"pm10":312.1,"tsp":401.2,"noise_dba":62.5,"temp_c":-1.5,"rh_pct":78.0,"pressure_kpa":102.35,"wind_ms":1.2,"wind_deg":45.0}"#.to_vec();
    let n = u64::from(o.connections.max(1));
    let per = o.messages / n;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let mut mo = MqttOptions::new(format!("bench-plain-{c}"), o.host.clone(), o.port);
        mo.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(mo, 100);
        let acked = acked.clone();
        let payload = payload.clone();
        let topic = format!("bench/plain/{c}/reading");
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
    acked.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
