//! HJ 212 frames as monitors in the field send them, through the real aggregator (embedded broker,
//! SQLite store, TCP listener): a dust monitor whose unused channels report 0 and an ambient air
//! station carrying gases are stored with every usable value (its gases on the site page, in the
//! series API and in the AQI); what is left out is counted per factor and reason in /metrics and
//! the raw frame is kept as a dead letter.

mod support;

use dustwatch_protocol::hj212::{self, Cn, DropReason};
use dustwatch_protocol::{Reading, TopicRoot};
use std::sync::atomic::Ordering::Relaxed;
use support::hj212::*;
use support::{http_get, metric, publish_all};
use tokio::io::AsyncWriteExt;

/// 2017-01-02 15:00:00 +08:00.
const T15: i64 = 1_483_340_400_000;

/// A construction-site dust monitor's real-time frame: PM, TSP and noise measured, the weather
/// channels it lacks reported as 0 (air pressure among them).
fn dust_monitor(mn: &str, pw: &str, flag: u8, minute: u32) -> Vec<u8> {
    let seg = format!(
        "QN=2017010215{minute:02}00123;ST=39;CN=2011;PW={pw};MN={mn};Flag={flag};CP=&&DataTime=2017010215{minute:02}00;\
         a34004-Rtd=36.2,a34004-Flag=N;a34002-Rtd=58.0,a34002-Flag=N;a34001-Rtd=96.5,a34001-Flag=N;\
         LA-Rtd=63.4,LA-Flag=N;a01001-Rtd=0.0,a01001-Flag=N;a01002-Rtd=0.0,a01002-Flag=N;\
         a01006-Rtd=0.0,a01006-Flag=N;a01007-Rtd=0.0,a01007-Flag=N;a01008-Rtd=0.0,a01008-Flag=N&&"
    );
    hj212::wrap_segment(&seg).expect("segment fits")
}

/// An ambient air station's minute frame: PM, four gases and weather as Min/Avg/Max. Its NO2
/// (450 µg/m³, IAQI 125 by the 1-hour table) is the worst of its pollutants.
fn air_station() -> Vec<u8> {
    let seg = "QN=20170102150100000;ST=22;CN=2051;PW=123456;MN=AIRSTATION01;Flag=4;CP=&&DataTime=20170102150000;\
        a34004-Min=20.0,a34004-Avg=25.0,a34004-Max=31.0,a34004-Flag=N;\
        a34002-Min=40.0,a34002-Avg=48.0,a34002-Max=57.0,a34002-Flag=N;\
        a21004-Min=420.0,a21004-Avg=450.0,a21004-Max=481.0,a21004-Flag=N;\
        a05024-Min=60.0,a05024-Avg=72.0,a05024-Max=80.0,a05024-Flag=N;\
        a21026-Min=5.0,a21026-Avg=6.0,a21026-Max=8.0,a21026-Flag=N;\
        a21005-Min=0.6,a21005-Avg=0.7,a21005-Max=0.9,a21005-Flag=N;\
        a01001-Min=12.1,a01001-Avg=12.5,a01001-Max=12.9,a01001-Flag=N;\
        a01002-Min=40.0,a01002-Avg=41.0,a01002-Max=43.0,a01002-Flag=N;\
        a01006-Min=101.1,a01006-Avg=101.2,a01006-Max=101.3,a01006-Flag=N;\
        a01007-Min=1.5,a01007-Avg=2.1,a01007-Max=3.0,a01007-Flag=N;\
        a01008-Min=170,a01008-Avg=180,a01008-Max=190,a01008-Flag=N&&";
    hj212::wrap_segment(seg).expect("segment fits")
}

fn assert_dust_values(r: &Reading) {
    assert_eq!(
        (r.pm25, r.pm10, r.tsp, r.noise_dba),
        (Some(36.2), Some(58.0), Some(96.5), Some(63.4))
    );
    assert_eq!(r.pressure_kpa, None, "a bare 0 is no air pressure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dust_monitor_with_zero_channels_is_stored_over_tcp_and_mqtt() {
    let l = Listener::start(REGISTRY, |_| {}).await;
    // TCP, asking for a reply: the 9014 comes after the commit, like any stored frame.
    let mut s = l.connect_from([127, 0, 0, 1]).await;
    let tcp = dust_monitor(MN1, PW1, 5, 0);
    s.write_all(&tcp).await.expect("send");
    assert_eq!(reply(&mut s).await.cn, Cn::DataReply);
    // MQTT: the same monitor a minute later, through the broker.
    l.until("subscribed", |a| {
        a.metrics.mqtt_subscribed.load(Relaxed) == 1
    })
    .await;
    let mqtt = dust_monitor("ANY", "x", 4, 1);
    let topic = TopicRoot::default().hj212("s1", "d9");
    let port = l.broker_port();
    publish_all(
        port,
        &format!("hj212-field-{port}"),
        vec![(topic, mqtt.clone())],
    )
    .await;
    l.until("both stored", |a| a.metrics.stored.load(Relaxed) == 2)
        .await;

    let got = l.readings(0, i64::MAX).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let tcp_reading = got.iter().find(|(d, _)| d == "d1").expect("TCP reading");
    assert_eq!(tcp_reading.1.ts.ms(), T15);
    assert_dust_values(&tcp_reading.1);
    let mqtt_reading = got.iter().find(|(d, _)| d == "d9").expect("MQTT reading");
    assert_eq!(mqtt_reading.1.ts.ms(), T15 + 60_000);
    assert_dust_values(&mqtt_reading.1);

    // Each frame's pressure counted once, each raw frame kept.
    let h = &l.agg.metrics.hj212;
    assert_eq!(h.fields_dropped("a01006", DropReason::ZeroNotPhysical), 2);
    assert_eq!(h.rejected("no_values"), 0);
    l.until("raw frames committed", |a| {
        a.metrics
            .rejected(dustwatch_protocol::RejectReason::PartialFrame)
            == 2
    })
    .await;
    let letters = l.dead_letters();
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (reason, detail, _) in &letters {
        assert_eq!(reason, "partial_frame");
        assert!(detail.contains("a01006 zero_not_physical"), "{detail}");
    }
    let payloads: Vec<&Vec<u8>> = letters.iter().map(|(_, _, p)| p).collect();
    assert!(payloads.contains(&&tcp) && payloads.contains(&&mqtt));

    let http = l.agg.http_addr.port();
    let (_, text) = tokio::task::spawn_blocking(move || http_get(http, "/metrics"))
        .await
        .expect("get");
    let key = r#"dustwatch_hj212_fields_dropped_total{factor="a01006",reason="zero_not_physical"}"#;
    assert_eq!(metric(&text, key), Some(2.0), "{key}");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn air_station_minute_frame_fills_the_site_page_the_series_and_the_aqi() {
    let l = Listener::start(REGISTRY, |_| {}).await;
    l.until("subscribed", |a| {
        a.metrics.mqtt_subscribed.load(Relaxed) == 1
    })
    .await;
    let raw = air_station();
    let topic = TopicRoot::default().hj212("s1", "station");
    let port = l.broker_port();
    publish_all(
        port,
        &format!("hj212-air-{port}"),
        vec![(topic, raw.clone())],
    )
    .await;
    l.until("stored", |a| a.metrics.stored.load(Relaxed) == 1)
        .await;

    let got = l.readings(0, i64::MAX).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0].1;
    assert_eq!(
        r.ts.ms(),
        T15 + 60_000,
        "minute data is stamped with its start"
    );
    assert_eq!(r.interval_s, 60);
    assert_eq!((r.pm25, r.pm10), (Some(25.0), Some(48.0)), "the Avg values");
    assert_eq!(
        (r.temp_c, r.rh_pct, r.pressure_kpa, r.wind_ms, r.wind_deg),
        (Some(12.5), Some(41.0), Some(101.2), Some(2.1), Some(180.0))
    );
    assert_eq!(
        (r.no2, r.o3, r.so2, r.co),
        (Some(450.0), Some(72.0), Some(6.0), Some(0.7)),
        "the gases are metrics of their own"
    );
    let h = &l.agg.metrics.hj212;
    for gas in ["a21004", "a05024", "a21026", "a21005"] {
        for reason in DropReason::ALL {
            assert_eq!(h.fields_dropped(gas, reason), 0, "{gas} {reason:?}");
        }
    }
    assert!(
        l.dead_letters().is_empty(),
        "a frame stored whole leaves no raw copy"
    );

    let http = l.agg.http_addr.port();
    let get = |path: String| async move {
        tokio::task::spawn_blocking(move || http_get(http, &path))
            .await
            .expect("get")
    };
    // The series API and its rollups carry the gas.
    let (status, body) = get(format!(
        "/api/sites/s1/series?metric=no2&from={}&to={}&step=60",
        T15,
        T15 + 3_600_000
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let series: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(series["unit"], "µg/m³");
    let points = series["points"].as_array().expect("points");
    assert_eq!(points.len(), 1, "{body}");
    assert_eq!(points[0]["mean"], 450.0);
    let (_, body) =
        get("/api/sites/s1/series?metric=co&from=1483340400000&to=1483344000000".into()).await;
    let series: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(series["unit"], "mg/m³", "{body}");

    // The chart draws the gas on its own axis.
    let (status, svg) = get(format!(
        "/charts/sites/s1.svg?metric=no2&from={}&to={}&lang=en",
        T15,
        T15 + 3_600_000
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        svg.contains("NO2") && !svg.contains("no data in this range"),
        "{svg}"
    );

    // The AQI is NO2's individual index, and NO2 is named the primary pollutant.
    let (_, body) = get("/api/sites".into()).await;
    let sites: serde_json::Value = serde_json::from_str(&body).expect("json");
    let s1 = sites
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "s1"))
        .expect("s1 listed");
    assert_eq!(s1["aqi"], 125, "{s1}");
    assert_eq!(s1["primary_pollutants"], serde_json::json!(["no2"]), "{s1}");

    // The site page shows the four gases with units and sub-indices.
    let (status, page) = get("/sites/s1?lang=en".into()).await;
    assert_eq!(status, 200);
    for (metric, text) in [
        ("no2", "450.0 µg/m³"),
        ("so2", "6.0 µg/m³"),
        ("o3", "72.0 µg/m³"),
        ("co", "0.7 mg/m³"),
    ] {
        assert!(
            page.contains(&format!("data-metric=\"{metric}\"")),
            "{metric}"
        );
        assert!(page.contains(text), "{text}");
    }
    assert!(
        page.contains("<b data-f=\"primary\">NO2</b>"),
        "primary pollutant on the page"
    );
    assert!(
        page.contains("<td class=\"n\" data-f=\"iaqi\">125</td>"),
        "NO2 IAQI on the page"
    );
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_factors_cost_nothing_and_a_frame_of_nothing_is_kept() {
    let l = Listener::start(REGISTRY, |_| {}).await;
    let mut s = l.connect_from([127, 0, 0, 1]).await;
    // A vendor factor, an unreadable value and a bad flag beside a good PM10.
    let mixed = frame(&segment(
        2011,
        5,
        MN1,
        PW1,
        "1",
        "20170102150000",
        "a34002-Rtd=80,a34002-Flag=N;zz999-Rtd=5;a34004-Rtd=--;a34001-Rtd=90,a34001-Flag=X",
    ));
    assert_eq!(exchange(&mut s, &mixed).await.cn, Cn::DataReply);
    // Nothing usable: still acknowledged, kept as a dead letter, the connection stays open.
    let nothing = nothing_usable_frame("2");
    assert_eq!(exchange(&mut s, &nothing).await.cn, Cn::DataReply);
    let good = data_frame(MN1, PW1, "3", 2);
    assert_eq!(exchange(&mut s, &good).await.cn, Cn::DataReply);

    let got = l.readings(0, i64::MAX).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].1.pm10, got[0].1.pm25), (Some(80.0), None));
    let h = &l.agg.metrics.hj212;
    assert_eq!(h.fields_dropped("other", DropReason::UnknownFactor), 1);
    assert_eq!(h.fields_dropped("a34004", DropReason::NonNumeric), 1);
    assert_eq!(h.fields_dropped("a34001", DropReason::BadFlag), 1);
    assert_eq!(h.fields_dropped("a34004", DropReason::ZeroFlagged), 1);
    assert_eq!(h.rejected("no_values"), 1);
    let reasons: Vec<String> = l.dead_letters().into_iter().map(|(r, _, _)| r).collect();
    assert_eq!(reasons, ["partial_frame", "no_values"]);
    l.stop().await;
}
