//! The pages and charts escape everything that came from a device or the registry: a site named
//! with markup and a device reporting markup as its firmware version show as text, never as
//! markup, in HTML and in SVG.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::{SiteInfo, TopicRoot};
use support::*;
use tokio_util::sync::CancellationToken;

const EVIL: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_from_devices_and_registry_is_escaped_in_html_and_svg() {
    let site = SiteInfo {
        id: "evil-1".into(),
        name: EVIL.into(),
        street: EVIL.into(),
        kind: Default::default(),
        phase: Default::default(),
        lat: None,
        lon: None,
        reference: None,
    };
    // Held whole: its broker and data directory live as long as it.
    let running = start("web-test", vec![site]).await;
    let (port, agg, shutdown) = (running.port, &running.agg, running.shutdown.clone());
    let root = TopicRoot::default();
    let status = serde_json::json!({"state": "online", "fw": EVIL, "boot": 1, "interval_s": 60});
    let t0 = 1_483_228_800_000i64;
    let mut msgs = vec![(
        root.status("evil-1", "dev-1"),
        status.to_string().into_bytes(),
    )];
    for seq in 0..30 {
        msgs.push((
            root.reading("evil-1", "dev-1"),
            reading(t0 + seq as i64 * 60_000, seq, 1).encode(),
        ));
    }
    publish_all(port, "web-test-pub", msgs).await;
    let http = agg.http_addr.port();
    tokio::task::spawn_blocking(move || {
        eventually(30, "readings stored", || {
            let (_, body) = http_get(http, "/api/sites");
            body.contains("\"seq\":29").then_some(())
        });
        eventually(30, "device status stored", || {
            let (_, body) = http_get(http, "/sites/evil-1");
            body.contains("dev-1").then_some(())
        });
        for path in [
            "/",
            "/sites/evil-1",
            "/alerts?state=all",
            "/dashboards/office",
        ] {
            let (code, body) = http_get(http, path);
            assert_eq!(code, 200, "{path}");
            assert!(!body.contains("<script>alert"), "{path} carries raw markup");
            assert!(!body.contains("<img src=x"), "{path} carries raw markup");
        }
        let (_, site_page) = http_get(http, "/sites/evil-1");
        assert!(
            site_page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "the name shows as text"
        );
        for path in ["/charts/sites/evil-1.svg", "/charts/aqi/evil-1.svg"] {
            let (code, svg) = http_get(http, path);
            assert_eq!(code, 200, "{path}");
            assert!(svg.starts_with("<svg"), "{path}");
            assert!(!svg.contains("<script"), "{path} carries raw markup");
            assert!(!svg.contains("<img"), "{path} carries raw markup");
        }
        let (code, csv) = http_get(
            http,
            "/api/sites/evil-1/series.csv?metric=pm10&from=1483228800000&to=1483232400000",
        );
        assert_eq!(code, 200);
        assert!(csv.starts_with("\u{feff}ts_ms,本地时间,指标"), "{csv}");
        assert!(
            csv.lines().count() >= 30,
            "header and the stored minutes: {csv}"
        );
    })
    .await
    .expect("checks");
    shutdown.cancel();
    let _ = running.agg.wait().await;
}

/// The office's "today" follows the fleet's clock, not the one device whose clock runs days
/// ahead: three sites report on 2017-01-01, one on 2017-01-03.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_is_the_fleet_s_day_not_the_fastest_device_s() {
    let running = start("web-today", vec![]).await;
    let (port, agg, shutdown) = (running.port, &running.agg, running.shutdown.clone());
    let root = TopicRoot::default();
    // 2017-01-01 02:00 UTC is 10:00 in Shanghai; the fast device is two days ahead.
    let t0 = 1_483_236_000_000i64;
    let mut msgs = Vec::new();
    for (site, start) in [
        ("s-a", t0),
        ("s-b", t0),
        ("s-c", t0),
        ("s-fast", t0 + 2 * 86_400_000),
    ] {
        for seq in 0..5u64 {
            msgs.push((
                root.reading(site, "dev-1"),
                reading(start + seq as i64 * 60_000, seq, 1).encode(),
            ));
        }
    }
    publish_all(port, "web-today-pub", msgs).await;
    let http = agg.http_addr.port();
    tokio::task::spawn_blocking(move || {
        eventually(30, "all four sites stored", || {
            let (_, body) = http_get(http, "/api/sites");
            (body.matches("\"seq\":4").count() == 4).then_some(())
        });
        let (code, report) = http_get(http, "/reports/daily/today.json");
        assert_eq!(code, 200, "{report}");
        assert!(report.contains("\"2017-01-01\""), "{report}");
        assert!(!report.contains("\"2017-01-03\""), "{report}");
    })
    .await
    .expect("checks");
    shutdown.cancel();
    let _ = running.agg.wait().await;
}

/// An aggregator on its own embedded broker and temporary data directory, subscribed.
struct Running {
    _broker: dustwatch_broker::EmbeddedBroker,
    _data: tempfile::TempDir,
    agg: Aggregator,
    shutdown: CancellationToken,
    /// The broker's port.
    port: u16,
}

async fn start(name: &str, sites: Vec<SiteInfo>) -> Running {
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{port}");
    c.mqtt.client_id = format!("{name}-{port}");
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.path().to_path_buf();
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(&c, sites, shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    Running {
        _broker: broker,
        _data: data,
        agg,
        shutdown,
        port,
    }
}
