//! `dustwatch-bench ingest`: the aggregator's ingest figures from one run, with ratios to the
//! aggregator's targets:
//! - sustained ingest into the durable store reaches at least 90 % of the rate at which the same
//!   broker delivers the same messages to a plain subscriber that discards them (1,000 devices),
//!   for Mosquitto and for the embedded broker;
//! - p99 latency from publish to committed under 100 ms at 10,000 readings/s;
//! - RSS grows with the number of sites, not with the number of readings;
//! - evaluating the default rule profile adds under 10 % to the ingest cost.
//!
//! The aggregator runs in-process (its RSS is this process's); Mosquitto runs as a child process
//! when installed. Every aggregator phase gets a fresh broker and a fresh temporary data dir.

mod fleet;

use crate::probe::{cpu_secs, heap_in_use_mib, rss_mib};
use crate::table::{list, median, row, verdict, Row};
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch::metrics::Metrics;
use dustwatch_broker::{BrokerConfig, EmbeddedBroker};
use dustwatch_protocol::TopicRoot;
use dustwatch_testkit::Mosquitto;
use fleet::{publish, Fleet};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What one run measures. The defaults keep a release run under two minutes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated devices (distinct topics and sequence numbers).
    pub devices: usize,
    /// Sites the devices belong to (`devices / sites` devices per site).
    pub sites: usize,
    /// Readings per throughput phase (N).
    pub readings: u64,
    /// MQTT clients sharing the fleet; each device is always published by the same client.
    pub publishers: usize,
    /// Paced rate of the latency phase, readings/s.
    pub paced_rate: u64,
    /// Length of the paced phase.
    pub paced_secs: u64,
    /// Throughput rounds per broker (plain subscriber and aggregator alternating); medians are
    /// compared.
    pub rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            devices: 1000,
            sites: 200,
            readings: 100_000,
            publishers: 4,
            paced_rate: 10_000,
            paced_secs: 6,
            rounds: 3,
        }
    }
}

/// A broker for one phase: Mosquitto as the tests start it (testkit: a child process with the
/// queue and in-flight limits off, killed on drop) or the embedded one (rumqttd cannot be
/// stopped; it lives until the process exits).
struct Broker {
    addr: SocketAddr,
    _mosquitto: Option<Mosquitto>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Mosquitto,
    Embedded,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mosquitto => "Mosquitto",
            Kind::Embedded => "embedded",
        }
    }
}

fn start_broker(kind: Kind) -> anyhow::Result<Broker> {
    match kind {
        Kind::Embedded => {
            let b = EmbeddedBroker::start(&BrokerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..Default::default()
            })?;
            Ok(Broker {
                addr: b.addr(),
                _mosquitto: None,
            })
        }
        Kind::Mosquitto => {
            let m = Mosquitto::start().ok_or_else(|| anyhow::anyhow!("mosquitto not installed"))?;
            Ok(Broker {
                addr: SocketAddr::from(([127, 0, 0, 1], m.port())),
                _mosquitto: Some(m),
            })
        }
    }
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: not done within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The baseline: the broker delivers N readings to a plain subscriber that discards them.
async fn baseline(kind: Kind, fleet: &Fleet, o: &Options) -> anyhow::Result<f64> {
    let broker = start_broker(kind)?;
    let mut opts = MqttOptions::new(
        "bench-discard",
        broker.addr.ip().to_string(),
        broker.addr.port(),
    );
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let filter = format!("{}/#", TopicRoot::default().as_str());
    client.subscribe(filter, QoS::AtLeastOnce).await?;
    let received = Arc::new(AtomicU64::new(0));
    let subscribed = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let (r, s, st) = (received.clone(), subscribed.clone(), stop.clone());
    let sub = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = st.cancelled() => break,
                e = eventloop.poll() => match e {
                    Ok(Event::Incoming(Packet::Publish(_))) => { r.fetch_add(1, Relaxed); }
                    Ok(Event::Incoming(Packet::SubAck(_))) => { s.store(1, Relaxed); }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "bench subscriber");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    });
    wait_until("baseline subscribe", 10, || subscribed.load(Relaxed) == 1).await?;
    let start = Instant::now();
    publish(broker.addr, fleet, o, 0, o.readings, None, stop.clone()).await?;
    wait_until("baseline delivery", 120, || {
        received.load(Relaxed) >= o.readings
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    stop.cancel();
    let _ = sub.await;
    Ok(o.readings as f64 / secs)
}

/// Memory is read after N, 2N, 4N, ... readings: this many marks.
const MEMORY_DOUBLINGS: usize = 5;

/// A running aggregator against a fresh broker and data dir.
struct AggPhase {
    broker: Broker,
    agg: Aggregator,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

async fn start_aggregator(
    kind: Kind,
    work: &Path,
    phase: &str,
    fleet: &Fleet,
    rules: bool,
) -> anyhow::Result<AggPhase> {
    let broker = start_broker(kind)?;
    let data = tempfile::Builder::new()
        .prefix(&format!("data-{phase}-"))
        .tempdir_in(work)?;
    let mut config = Config::default();
    config.mqtt.url = format!("mqtt://{}", broker.addr);
    config.mqtt.client_id = format!("dustwatch-bench-{phase}");
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.data_dir = data.path().to_path_buf();
    config.rules.enabled = rules;
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config, fleet.sites.clone(), shutdown.clone()).await?;
    let m = agg.metrics.clone();
    wait_until("aggregator subscribe", 10, || {
        m.mqtt_subscribed.load(Relaxed) == 1
    })
    .await?;
    Ok(AggPhase {
        broker,
        agg,
        shutdown,
        _data: data,
    })
}

impl AggPhase {
    fn metrics(&self) -> &Metrics {
        &self.agg.metrics
    }

    /// Publish readings `from..to` and wait until the store committed them; seconds taken.
    async fn ingest(
        &self,
        fleet: &Fleet,
        o: &Options,
        from: u64,
        to: u64,
        rate: Option<u64>,
    ) -> anyhow::Result<f64> {
        let stop = CancellationToken::new();
        let start = Instant::now();
        publish(self.broker.addr, fleet, o, from, to, rate, stop.clone()).await?;
        let m = self.agg.metrics.clone();
        wait_until("aggregator ingest", 120, || m.stored.load(Relaxed) >= to).await?;
        let secs = start.elapsed().as_secs_f64();
        stop.cancel();
        Ok(secs)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.agg.wait().await;
        drop(self.broker);
    }
}

/// RSS and heap in use of `phase`'s process after N, 2N, 4N, ... readings (the phase has
/// ingested N already; `before` is what it used before that).
async fn memory_rows(
    phase: &AggPhase,
    b: &str,
    fleet: &Fleet,
    o: &Options,
    before: (f64, f64),
) -> anyhow::Result<Vec<Row>> {
    let n = o.readings;
    let (rss0, heap0) = before;
    let mut rows = Vec::new();
    // Memory is read once the pipeline is idle: what is still in flight right after the
    // last commit (rules channel, owed acks, publisher buffers) is not what stays.
    let settle = Duration::from_secs(3);
    // SQLite's page caches (bounded: `[store] cache_mib` for the writer) fill while the
    // file grows past them, so memory is compared once they are full: the readings
    // double from N to 16N and the last doubling is the one judged.
    let sites = o.sites;
    rows.push(row(
        format!("RSS / heap in use before ingest ({sites} sites, {b})"),
        format!("{rss0:.1} / {heap0:.1} MiB"),
        "",
        "—".into(),
    ));
    let mut done = n;
    let mut marks = Vec::new();
    for round in 0..MEMORY_DOUBLINGS {
        if round > 0 {
            eprintln!("{b}: aggregator, {done} more readings");
            phase.ingest(fleet, o, done, 2 * done, None).await?;
            done *= 2;
        }
        tokio::time::sleep(settle).await;
        let mark = (done, rss_mib(), heap_in_use_mib());
        eprintln!(
            "{b}: after {done} readings RSS {:.1} MiB, heap {:.1} MiB",
            mark.1, mark.2
        );
        marks.push(mark);
    }
    let (last, earlier) = marks.split_last().expect("MEMORY_DOUBLINGS > 0");
    for (readings, rss, heap) in earlier {
        rows.push(row(
            format!("RSS / heap in use after {readings} readings ({sites} sites)"),
            format!("{rss:.1} / {heap:.1} MiB"),
            "",
            "—".into(),
        ));
    }
    let (_, rss_half, heap_half) = earlier.last().copied().unwrap_or(*last);
    let (readings, rss, heap) = *last;
    rows.push(row(
        format!("RSS / heap in use after {readings} readings ({sites} sites)"),
        format!("{rss:.1} / {heap:.1} MiB"),
        "flat in readings (last doubling)",
        format!(
            "RSS {:.2}, heap {:.2} (2× readings; RSS {}, heap {})",
            rss / rss_half,
            heap / heap_half,
            verdict(rss / rss_half < 1.10),
            verdict(heap / heap_half < 1.10)
        ),
    ));
    Ok(rows)
}

/// Run every phase and return the Markdown table. `work` holds the throwaway stores.
pub async fn run(work: &Path, o: &Options) -> anyhow::Result<String> {
    anyhow::ensure!(
        o.devices.is_multiple_of(o.publishers),
        "devices must be a multiple of publishers"
    );
    std::fs::create_dir_all(work)?;
    let fleet = Fleet::new(o);
    let n = o.readings;
    let mut rows = Vec::new();
    let have_mosquitto = Mosquitto::available();
    let primary = if have_mosquitto {
        Kind::Mosquitto
    } else {
        Kind::Embedded
    };
    let mut rules_on_rate = None;

    for kind in [Kind::Mosquitto, Kind::Embedded] {
        let b = kind.name();
        if kind == Kind::Mosquitto && !have_mosquitto {
            rows.push(row(
                format!("{b}: plain subscriber / aggregator ingest"),
                "mosquitto not installed",
                "ingest ≥ 0.90 × plain",
                "—".into(),
            ));
            continue;
        }
        // Rounds alternate the plain subscriber and the aggregator, each on a fresh broker, and
        // the medians are compared: a burst of other work on these shared cores then moves one
        // round, not the verdict.
        let mut plains = Vec::new();
        let mut rates = Vec::new();
        let mut memory = Vec::new();
        for round in 1..=o.rounds {
            eprintln!("{b}: plain subscriber, {n} readings (round {round})");
            plains.push(baseline(kind, &fleet, o).await?);
            eprintln!("{b}: aggregator, {n} readings (round {round})");
            let phase =
                start_aggregator(kind, work, &format!("{b}-on-{round}"), &fleet, true).await?;
            let before = (rss_mib(), heap_in_use_mib());
            let secs = phase.ingest(&fleet, o, 0, n, None).await?;
            rates.push(n as f64 / secs);
            // The first aggregator on the primary broker goes on to the memory figures, before
            // any other aggregator ran in this process.
            if round == 1 && kind == primary {
                memory = memory_rows(&phase, b, &fleet, o, before).await?;
            }
            phase.stop().await;
        }
        let (plain, rate) = (median(&plains), median(&rates));
        rows.push(row(
            format!(
                "{b} → plain subscriber that discards (QoS 1, {} devices), median of {}",
                o.devices, o.rounds
            ),
            format!("{plain:.0} msgs/s ({})", list(&plains)),
            "(baseline)",
            "1.00".into(),
        ));
        rows.push(row(
            format!(
                "{b} → aggregator, committed to SQLite (rules on), median of {}",
                o.rounds
            ),
            format!("{rate:.0} readings/s ({})", list(&rates)),
            "≥ 0.90 × baseline",
            format!("{:.2} ({})", rate / plain, verdict(rate / plain >= 0.90)),
        ));
        if kind == primary {
            rules_on_rate = Some(rate);
            rows.append(&mut memory);
        }
    }

    // Rules overhead, same broker and data: sustained rate, and CPU per reading at the paced rate.
    let b = primary.name();
    let mut off_rates = Vec::new();
    for round in 1..=o.rounds {
        eprintln!("{b}: aggregator with rules off, {n} readings (round {round})");
        let phase =
            start_aggregator(primary, work, &format!("rules-off-{round}"), &fleet, false).await?;
        let secs = phase.ingest(&fleet, o, 0, n, None).await?;
        phase.stop().await;
        off_rates.push(n as f64 / secs);
    }
    let off_rate = median(&off_rates);
    let on_rate = rules_on_rate.unwrap_or(f64::NAN);
    rows.push(row(
        format!("{b} → aggregator, rules off, median of {}", o.rounds),
        format!("{off_rate:.0} readings/s ({})", list(&off_rates)),
        "",
        "—".into(),
    ));
    let cost = off_rate / on_rate - 1.0;
    rows.push(row(
        "rules overhead: ingest cost on/off (sustained rate off ÷ on − 1)".to_string(),
        format!("{:+.1} %", cost * 100.0),
        "< 10 %",
        format!("{:.2} ({})", on_rate / off_rate, verdict(cost < 0.10)),
    ));

    let rate = o.paced_rate;
    let paced_n = rate * o.paced_secs;
    // Rules on and off alternate, `rounds` times each; CPU per reading is compared by medians,
    // and latency is judged on the worst round.
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let (mut reached, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=o.rounds {
        for (i, rules) in [true, false].into_iter().enumerate() {
            let label = if rules { "on" } else { "off" };
            eprintln!(
                "{b}: paced {rate} readings/s for {} s, rules {label} (round {round})",
                o.paced_secs
            );
            let phase = start_aggregator(
                primary,
                work,
                &format!("paced-{label}-{round}"),
                &fleet,
                rules,
            )
            .await?;
            let c0 = cpu_secs();
            let secs = phase.ingest(&fleet, o, 0, paced_n, Some(rate)).await?;
            cpu[i].push((cpu_secs() - c0) / paced_n as f64 * 1e6);
            if rules {
                let m = phase.metrics();
                let ms = |q| m.event_to_commit_seconds.quantile(q).unwrap_or(f64::NAN) * 1000.0;
                reached.push(paced_n as f64 / secs);
                p50s.push(ms(0.50));
                p99s.push(ms(0.99));
            }
            phase.stop().await;
        }
    }
    let worst = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let slowest = reached.iter().copied().fold(f64::NAN, f64::min);
    let rounds = o.rounds;
    rows.push(row(
        format!("paced publish rate reached ({b}, rules on), slowest of {rounds}"),
        format!("{slowest:.0} readings/s ({})", list(&reached)),
        &format!("{rate} readings/s"),
        format!("{:.2}", slowest / rate as f64),
    ));
    let p50 = worst(&p50s);
    rows.push(row(
        format!("publish → committed p50 at {rate}/s (histogram bucket bound), worst of {rounds}"),
        format!("≤ {p50:.1} ms ({} ms)", list(&p50s)),
        "",
        "—".into(),
    ));
    let p99 = worst(&p99s);
    rows.push(row(
        format!("publish → committed p99 at {rate}/s (histogram bucket bound), worst of {rounds}"),
        format!("≤ {p99:.1} ms ({} ms)", list(&p99s)),
        "< 100 ms",
        format!("{:.2} ({})", p99 / 100.0, verdict(p99 < 100.0)),
    ));
    let (on, off) = (median(&cpu[0]), median(&cpu[1]));
    let cpu_cost = on / off - 1.0;
    rows.push(row(
        format!("CPU per reading at {rate}/s, rules on / off (whole process), medians of {rounds}"),
        format!(
            "{on:.1} / {off:.1} µs (on {}; off {})",
            list(&cpu[0]),
            list(&cpu[1])
        ),
        "< 10 % more",
        format!(
            "{:.2} ({:+.1} %, {})",
            on / off,
            cpu_cost * 100.0,
            verdict(cpu_cost < 0.10)
        ),
    ));

    let mut out = String::new();
    out.push_str(&format!(
        "{} devices on {} sites, {} publisher clients, N = {n} readings per phase, \
         writer page cache {} MiB (the default)\n\n",
        o.devices,
        o.sites,
        o.publishers,
        Config::default().store.cache_mib
    ));
    out.push_str("| figure | measured | target | ratio |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.figure, r.measured, r.target, r.ratio
        ));
    }
    Ok(out)
}
