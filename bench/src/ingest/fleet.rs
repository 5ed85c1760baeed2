//! The benchmark's simulated fleet and its publishers: which device publishes on which topic,
//! each reading's payload, and QoS 1 publishing as fast as the broker takes it or paced.

use super::Options;
use dustwatch_protocol::{EventTime, Reading, SiteInfo, TopicRoot};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The simulated fleet: device `i` is `d{i}` on site `bench-{i % sites}`.
pub(super) struct Fleet {
    pub(super) topics: Vec<String>,
    pub(super) sites: Vec<SiteInfo>,
}

impl Fleet {
    pub(super) fn new(o: &Options) -> Fleet {
        let root = TopicRoot::default();
        Fleet {
            topics: (0..o.devices)
                .map(|i| root.reading(&format!("bench-{:03}", i % o.sites), &format!("d{i:04}")))
                .collect(),
            sites: crate::dashboard::bench_sites(o.sites),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reading number `k` of the run: device `k % devices`, seq `k / devices`, event time = now.
fn payload(k: u64, devices: u64) -> Vec<u8> {
    let i = k % devices;
    Reading {
        ts: EventTime(now_ms()),
        seq: k / devices,
        boot: 1,
        interval_s: 60,
        pm25: Some(30.0 + (i % 90) as f64),
        pm10: Some(60.0 + (i % 150) as f64),
        tsp: Some(120.0 + (i % 200) as f64),
        noise_dba: Some(60.0),
        ..Default::default()
    }
    .encode()
}

/// Publish readings `from..to` (QoS 1) with `o.publishers` clients, as fast as the broker
/// takes them or paced at `rate` readings/s. Returns once every reading is handed to a client;
/// the clients keep running (for their acks) until the returned token is cancelled.
pub(super) async fn publish(
    addr: SocketAddr,
    fleet: &Fleet,
    o: &Options,
    from: u64,
    to: u64,
    rate: Option<u64>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let p = o.publishers as u64;
    let mut tasks = Vec::new();
    for c in 0..p {
        let mut opts = MqttOptions::new(
            format!("bench-pub-{c}-{}", rand_suffix()),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(200);
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let stop_poll = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_poll.cancelled() => break,
                    e = eventloop.poll() => if let Err(e) = e {
                        tracing::warn!(error = %e, "bench publisher");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        let topics: Vec<String> = fleet.topics.clone();
        let devices = o.devices as u64;
        tasks.push(tokio::spawn(async move {
            // Device k % devices is always published by client k % p (p divides devices).
            let mine = (from..to).filter(move |k| k % p == c);
            match rate {
                None => {
                    for k in mine {
                        let topic = topics[(k % devices) as usize].clone();
                        client
                            .publish(topic, QoS::AtLeastOnce, false, payload(k, devices))
                            .await?;
                    }
                }
                Some(rate) => {
                    // Ticks of 10 ms, each with this client's share of the rate.
                    let per_tick = (rate / p / 100).max(1) as usize;
                    let mut tick = tokio::time::interval(Duration::from_millis(10));
                    let mut mine = mine.peekable();
                    while mine.peek().is_some() {
                        tick.tick().await;
                        for k in mine.by_ref().take(per_tick) {
                            let topic = topics[(k % devices) as usize].clone();
                            client
                                .publish(topic, QoS::AtLeastOnce, false, payload(k, devices))
                                .await?;
                        }
                    }
                }
            }
            Ok::<_, rumqttc::ClientError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Relaxed)
}
