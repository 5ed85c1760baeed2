//! `dustwatch-bench charts`: the dashboard's performance figures from one run, with ratios to the
//! dashboard's targets: a 24-hour, 1-minute site chart renders in under 20 ms; the overview of 200
//! sites answers in under 100 ms; the page stays responsive with 50 live updates a second.
//! Everything runs in-process against the real pieces (embedded broker, aggregator, HTTP).

use dustwatch::app::Aggregator;
use dustwatch::charts::site_series::{AlertPeriod, LevelPeriod, SiteSeries};
use dustwatch::charts::{self, data::default_limits};
use dustwatch::config::Config;
use dustwatch::store::SeriesPoint;
use dustwatch_broker::EmbeddedBroker;
use dustwatch_protocol::time::{DAY, HOUR, MINUTE};
use dustwatch_protocol::{EventTime, Level, Metric, Reading, SiteInfo, TopicRoot};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// Target (an upper bound for times).
    pub target: Option<f64>,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<58} {:>10.2} {:<4}", self.name, self.value, self.unit)?;
        if let Some(t) = self.target {
            write!(
                f,
                "  target < {t} {}  ({:.1}x headroom)",
                self.unit,
                t / self.value.max(1e-9)
            )?;
        }
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get((v.len() * 95 / 100).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// A 24-hour, 1-minute site chart with every overlay.
pub fn day_chart() -> SiteSeries {
    let t0 = 1_483_228_800_000_i64;
    let line = |scale: f64| -> Vec<SeriesPoint> {
        (0..1440)
            .filter(|i| !(600..660).contains(i)) // a one-hour data gap
            .map(|i| {
                let v = scale * (1.0 + 0.5 * ((i as f64) / 90.0).sin()) + (i % 7) as f64;
                SeriesPoint {
                    ts: t0 + i * MINUTE,
                    mean: v,
                    min: v - 5.0,
                    max: v + 5.0,
                    count: 1,
                }
            })
            .collect()
    };
    SiteSeries {
        title: "Bench site (bench-1)".into(),
        from_ms: t0,
        to_ms: t0 + DAY,
        step_ms: MINUTE,
        tz: chrono_tz::Asia::Shanghai,
        lines: vec![
            (Metric::Pm25, line(80.0)),
            (Metric::Pm10, line(140.0)),
            (Metric::Tsp, line(220.0)),
        ],
        limits: default_limits(),
        alerts: vec![AlertPeriod {
            from_ms: t0 + 8 * HOUR,
            to_ms: t0 + 11 * HOUR,
            severity: dustwatch_protocol::Severity::Violation,
        }],
        city: vec![LevelPeriod {
            from_ms: t0,
            to_ms: t0 + 12 * HOUR,
            level: Level::Red,
        }],
        sprinkles: (0..6).map(|i| t0 + i * 4 * HOUR).collect(),
        size: (900, 360),
        english: false,
    }
}

fn chart_figures(out: &mut Vec<Figure>) -> Result<(), charts::ChartError> {
    let chart = day_chart();
    for _ in 0..3 {
        charts::svg(&chart)?;
        charts::png(&chart)?;
    }
    let mut svg = Vec::new();
    let mut png = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        charts::svg(&chart)?;
        svg.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        charts::png(&chart)?;
        png.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out.push(Figure {
        name: "24 h x 1 min site chart, SVG (median of 30)".into(),
        value: median(svg),
        unit: "ms",
        target: Some(20.0),
    });
    out.push(Figure {
        name: "24 h x 1 min site chart, PNG incl. encoding (median of 30)".into(),
        value: median(png),
        unit: "ms",
        target: Some(20.0),
    });
    Ok(())
}

/// A plain HTTP/1.1 GET; returns the status code and the time to the full answer, ms.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, f64)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let status = std::str::from_utf8(buf.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, t.elapsed().as_secs_f64() * 1e3))
}

fn reading(ts: i64, seq: u64, i: usize) -> Vec<u8> {
    Reading {
        ts: EventTime(ts),
        seq,
        boot: 1,
        interval_s: 60,
        pm25: Some(40.0 + (i % 90) as f64),
        pm10: Some(80.0 + (i % 150) as f64),
        tsp: Some(150.0 + (i % 200) as f64),
        noise_dba: Some(60.0),
        ..Default::default()
    }
    .encode()
}

/// Run every figure; `data_dir` holds the throwaway store.
pub async fn run(data_dir: &Path) -> anyhow::Result<Vec<Figure>> {
    let mut out = Vec::new();
    tokio::task::spawn_blocking(move || {
        let mut f = Vec::new();
        chart_figures(&mut f).map(|_| f)
    })
    .await??
    .into_iter()
    .for_each(|f| out.push(f));

    let mut config = Config::default();
    config.broker.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let broker = EmbeddedBroker::start(&config.broker)?;
    config.mqtt.url = format!("mqtt://{}", broker.addr());
    config.mqtt.client_id = "dustwatch-bench".into();
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.data_dir = data_dir.to_path_buf();
    let sites = bench_sites(200);
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&config, sites, shutdown.clone()).await?;
    let http = agg.http_addr;

    // Fill: 200 sites x 60 minutes.
    let mut opts = MqttOptions::new(
        "bench-pub",
        broker.addr().ip().to_string(),
        broker.addr().port(),
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(200);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let poller = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000_i64;
    for m in 0..60u64 {
        for i in 0..200 {
            let topic = root.reading(&format!("bench-{i:03}"), "d1");
            client
                .publish(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    reading(t0 + m as i64 * MINUTE, m, i),
                )
                .await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while agg.reader.hot().all().len() < 200
        || agg
            .reader
            .hot()
            .all()
            .values()
            .any(|l| l.reading.ts < EventTime(t0) + 59 * MINUTE)
    {
        if Instant::now() > deadline {
            anyhow::bail!("the aggregator did not store the bench readings within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let overview = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<f64>> {
        for _ in 0..3 {
            get(http, "/")?;
        }
        (0..40).map(|_| get(http, "/").map(|r| r.1)).collect()
    })
    .await??;
    out.push(Figure {
        name: "overview of 200 sites, GET / (median of 40)".into(),
        value: median(overview.clone()),
        unit: "ms",
        target: Some(100.0),
    });
    out.push(Figure {
        name: "overview of 200 sites, GET / (p95 of 40)".into(),
        value: p95(overview),
        unit: "ms",
        target: Some(100.0),
    });

    // 50 live updates a second for 10 s, with a live page (SSE) connected, while the overview and
    // a site chart are requested as a visitor would.
    let sse_events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sse_events.clone();
    let sse = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(http)?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        write!(s, "GET /events HTTP/1.1\r\nHost: {http}\r\n\r\n")?;
        let start = Instant::now();
        let mut buf = [0u8; 65536];
        let mut carry = String::new();
        while start.elapsed() < Duration::from_secs(11) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    carry.push_str(&String::from_utf8_lossy(&buf[..n]));
                    let k = carry.matches("event: sites").count() as u64;
                    if k > 0 {
                        counter.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
                        carry = carry
                            .rsplit("event: sites")
                            .next()
                            .unwrap_or("")
                            .to_string();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    let load_client = client.clone();
    let publisher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..500u64 {
            tick.tick().await;
            let i = (n % 200) as usize;
            let m = 60 + n / 200;
            let topic = root.reading(&format!("bench-{i:03}"), "d1");
            let _ = load_client
                .publish(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    reading(t0 + m as i64 * MINUTE, m, i),
                )
                .await;
        }
    });
    let under_load =
        tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<f64>, Vec<f64>)> {
            let mut page = Vec::new();
            let mut chart = Vec::new();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                page.push(get(http, "/")?.1);
                chart.push(get(http, "/charts/sites/bench-007.svg")?.1);
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok((page, chart))
        })
        .await??;
    publisher.await?;
    let _ = sse.join();
    let events = sse_events.load(std::sync::atomic::Ordering::Relaxed) as f64;
    out.push(Figure {
        name: "with 50 updates/s: overview GET / (p95)".into(),
        value: p95(under_load.0),
        unit: "ms",
        target: Some(100.0),
    });
    out.push(Figure {
        name: "with 50 updates/s: site chart SVG (p95)".into(),
        value: p95(under_load.1),
        unit: "ms",
        target: Some(100.0),
    });
    out.push(Figure {
        name: "with 50 updates/s: SSE `sites` events to the page per s".into(),
        value: events / 10.0,
        unit: "/s",
        target: None,
    });

    shutdown.cancel();
    let _ = client.disconnect().await;
    poller.abort();
    let _ = agg.wait().await;
    Ok(out)
}

/// `n` registry sites `bench-000`, `bench-001`, ... on eight streets, for the benchmarks.
pub fn bench_sites(n: usize) -> Vec<SiteInfo> {
    (0..n)
        .map(|i| {
            SiteInfo::new(
                format!("bench-{i:03}"),
                format!("Bench site {i}"),
                format!("Street {}", i % 8),
            )
        })
        .collect()
}
