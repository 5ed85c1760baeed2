//! HJ 212-2017 ingest end to end: frames over the native TCP listener and over MQTT (embedded
//! broker) into an in-process aggregator; replies after commit; every rejection reason counted;
//! hostile clients; the connection limit; idempotent redelivery.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::hj212::{self, Cn, DeviceProfile, Frame, FLAG_REPLY};
use dustwatch_protocol::{EventTime, Reading, TopicRoot};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use support::hj212::{
    closed, frame, read_line, reply, segment, Listener, MN1, REGISTRY, SECOND_DEVICE,
};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const MN2: &str = "410108HJ0000000000000002";
/// The vector of docs/domain.md: 374 bytes of data segment, CRC 06C0.
const DOMAIN_SEGMENT: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N;a34002-Rtd=312.0,a34002-Flag=N;a34001-Rtd=401.0,a34001-Flag=N;LA-Rtd=62.5,LA-Flag=N;a01001-Rtd=-1.5,a01001-Flag=N;a01002-Rtd=78.0,a01002-Flag=N;a01006-Rtd=102.35,a01006-Flag=N;a01007-Rtd=1.2,a01007-Flag=N;a01008-Rtd=45,a01008-Flag=N&&";
/// 2017-01-02 15:00:00 +08:00.
const T15: i64 = 1_483_340_400_000;

/// The aggregator with its HJ 212 listener and two devices: [`REGISTRY`]'s and [`SECOND_DEVICE`].
async fn running(tune: impl FnOnce(&mut Config)) -> Listener {
    let registry = format!("{REGISTRY}{SECOND_DEVICE}");
    Listener::start(&registry, tune).await
}

async fn dead_letters(r: &Listener) -> u64 {
    let reader = r.agg.reader.clone();
    tokio::task::spawn_blocking(move || reader.counts().expect("counts").dead_letters)
        .await
        .expect("join")
}

#[test]
fn domain_vector_frame_is_what_the_codec_builds() {
    assert_eq!(DOMAIN_SEGMENT.len(), 374);
    assert_eq!(hj212::crc16(b"123456789"), 0x2F80);
    assert_eq!(
        frame(DOMAIN_SEGMENT),
        format!("##0374{DOMAIN_SEGMENT}06C0\r\n").into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_become_readings_and_replies_follow_the_commit() {
    let r = running(|_| {}).await;
    let mut s = TcpStream::connect(r.addr).await.expect("connect");

    // The domain vector with Flag=5 (reply wanted).
    let seg = DOMAIN_SEGMENT.replace("Flag=4", "Flag=5");
    s.write_all(&frame(&seg)).await.expect("send");
    let ack = reply(&mut s).await;
    assert_eq!(ack.cn, Cn::DataReply);
    assert_eq!(ack.qn, "20170102150000000");
    assert_eq!(ack.mn, MN1);
    // The reply comes after the commit: the reading is already there, no waiting.
    let got = r.readings(T15, T15 + 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (device, reading) = &got[0];
    assert_eq!(device, "d1");
    assert_eq!(reading.interval_s, 60);
    assert_eq!(
        (reading.pm25, reading.pm10, reading.tsp),
        (Some(245.0), Some(312.0), Some(401.0))
    );
    assert_eq!(reading.noise_dba, Some(62.5));
    assert_eq!(reading.temp_c, Some(-1.5));
    assert_eq!(reading.pressure_kpa, Some(102.35));
    assert_eq!(reading.wind_deg, Some(45.0));
    assert_eq!((reading.boot, reading.seq), (0, 201_701_021_500_001));

    // Minute, hour and day data become readings of their interval, stamped with their end.
    let items = |f: &str| format!("a34002-{f}=80.5,a34002-Flag=N;a34004-{f}=40.0,a34004-Flag=N");
    for (cn, qn, dt, interval, end) in [
        (
            2051,
            "20170102150100000",
            "20170102150000",
            60,
            T15 + 60_000,
        ),
        (2061, "20170102150000001", "20170102140000", 3_600, T15),
        (
            2031,
            "20170102000000002",
            "20170101000000",
            86_400,
            T15 - 15 * 3_600_000,
        ),
    ] {
        let field = if cn == 2011 { "Rtd" } else { "Avg" };
        s.write_all(&frame(&segment(
            cn,
            5,
            MN1,
            "123456",
            qn,
            dt,
            &items(field),
        )))
        .await
        .expect("send");
        let ack = reply(&mut s).await;
        assert_eq!((ack.cn, ack.qn.as_str()), (Cn::DataReply, qn));
        let got = r.readings(end, end + 1).await;
        let found = got
            .iter()
            .find(|(_, x)| x.interval_s == interval)
            .unwrap_or_else(|| panic!("CN {cn}: no reading of {interval} s at {end}: {got:?}"));
        assert_eq!(found.1.pm10, Some(80.5), "CN {cn}");
    }

    // Flag=4 asks for no reply: the next reply on the connection is the Flag=5 frame's.
    let quiet = segment(
        2011,
        4,
        MN1,
        "123456",
        "20170102150200000",
        "20170102150200",
        "a34002-Rtd=90,a34002-Flag=N",
    );
    let loud = segment(
        2011,
        5,
        MN1,
        "123456",
        "20170102150300000",
        "20170102150300",
        "a34002-Rtd=91,a34002-Flag=D",
    );
    s.write_all(&[frame(&quiet), frame(&loud)].concat())
        .await
        .expect("send");
    assert_eq!(reply(&mut s).await.qn, "20170102150300000");
    let got = r.readings(T15 + 120_000, T15 + 180_001).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1].1.flags.get("pm10"),
        Some(&dustwatch_protocol::Flag::D)
    );

    // A device retrying a frame whose reply it missed: replied again, stored once.
    let before = r.readings(0, i64::MAX).await.len();
    s.write_all(&frame(&seg)).await.expect("send");
    assert_eq!(reply(&mut s).await.qn, "20170102150000000");
    assert_eq!(r.readings(0, i64::MAX).await.len(), before);
    assert!(r.agg.metrics.duplicates.load(Relaxed) >= 1);

    // A mg/m³ device on its own connection: values arrive in µg/m³.
    let mut s2 = TcpStream::connect(r.addr).await.expect("connect");
    let seg2 = segment(
        2011,
        5,
        MN2,
        "654321",
        "20170102150000000",
        "20170102150000",
        "a34004-Rtd=0.245,a34004-Flag=N;LA-Rtd=55.0",
    );
    s2.write_all(&frame(&seg2)).await.expect("send");
    assert_eq!(reply(&mut s2).await.mn, MN2);
    let got = r.readings(T15, T15 + 1).await;
    let d2 = got.iter().find(|(d, _)| d == "d2").expect("d2 stored");
    assert_eq!(d2.1.pm25, Some(245.0));
    assert_eq!(d2.1.noise_dba, Some(55.0));

    // A frame split into packets (PNUM/PNO) is reassembled, stored once and replied to.
    let mut long = hj212::from_reading(
        &Reading {
            ts: EventTime(T15 + 600_000),
            interval_s: 60,
            pm10: Some(77.0),
            ..Reading::default()
        },
        Cn::RealTime,
        MN1,
        "123456",
        39,
        &DeviceProfile::default(),
    )
    .expect("frame");
    long.flag = long.flag.map(|f| f | FLAG_REPLY);
    long.cp.params.push(("BeginTime".into(), "1".repeat(600)));
    long.cp.params.push(("EndTime".into(), "2".repeat(600)));
    let packets = hj212::encode_packets(&long).expect("packets");
    assert!(packets.len() > 1);
    s.write_all(&packets.concat()).await.expect("send");
    assert_eq!(reply(&mut s).await.qn, long.qn);
    let got = r.readings(T15 + 600_000, T15 + 600_001).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.pm10, Some(77.0));

    // The counter moves right after the reply is written: wait for it rather than race it.
    let replies = &r.agg.metrics.hj212.replies;
    for _ in 0..1000 {
        if replies.load(Relaxed) >= 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(replies.load(Relaxed) >= 8);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_reason_is_counted_and_kept_as_a_dead_letter() {
    let r = running(|_| {}).await;
    let good = |items: &str| {
        segment(
            2011,
            4,
            MN1,
            "123456",
            "20170102150000000",
            "20170102150000",
            items,
        )
    };

    let mut bad_crc = frame(&good("a34002-Rtd=80"));
    let n = bad_crc.len();
    bad_crc[n - 3] = if bad_crc[n - 3] == b'0' { b'1' } else { b'0' };
    let mut wrong_length = frame(&good("a34002-Rtd=80"));
    wrong_length[2..6].copy_from_slice(b"0100");
    let mut oversized = b"##1200".to_vec();
    oversized.extend(std::iter::repeat_n(b'x', 1500));
    oversized.extend_from_slice(b"\r\n");
    let unknown_cn = frame(&segment(
        9999,
        4,
        MN1,
        "123456",
        "1",
        "20170102150000",
        "a34002-Rtd=80",
    ));
    // An unknown factor or an unreadable value costs only itself; with nothing else in the
    // frame, the frame has no usable value.
    let unknown_factor = frame(&good("zz999-Rtd=80"));
    let non_numeric = frame(&good("a34002-Rtd=lots"));
    let cases: [(&str, Vec<u8>); 6] = [
        ("bad_crc", bad_crc),
        ("length_mismatch", wrong_length),
        ("oversized", oversized),
        ("unknown_cn", unknown_cn),
        ("no_values", unknown_factor),
        ("no_values", non_numeric),
    ];
    let mut s = TcpStream::connect(r.addr).await.expect("connect");
    for (_, bytes) in &cases {
        s.write_all(bytes).await.expect("send");
    }
    // Wrong password and unknown MN: both answered with 9011 QnRtn 3 when a reply is asked for.
    let wrong_pw = frame(&segment(
        2011,
        5,
        MN1,
        "000000",
        "20170102150000000",
        "20170102150000",
        "a34002-Rtd=80",
    ));
    let unknown_mn = frame(&segment(
        2011,
        5,
        "NOBODY",
        "123456",
        "20170102150000000",
        "20170102150000",
        "a34002-Rtd=80",
    ));
    s.write_all(&wrong_pw).await.expect("send");
    let rtn = reply(&mut s).await;
    assert_eq!(
        (rtn.cn, rtn.cp.param("QnRtn")),
        (Cn::RequestReply, Some("3"))
    );
    s.write_all(&unknown_mn).await.expect("send");
    let rtn = reply(&mut s).await;
    // The same answer as a wrong PW: an MN guess cannot be told from a PW guess.
    assert_eq!(
        (rtn.cn, rtn.cp.param("QnRtn")),
        (Cn::RequestReply, Some("3"))
    );
    // Truncated: the connection closes mid-frame.
    let whole = frame(&good("a34002-Rtd=80"));
    let mut cut = TcpStream::connect(r.addr).await.expect("connect");
    cut.write_all(&whole[..whole.len() / 2])
        .await
        .expect("send");
    cut.shutdown().await.expect("half-close");
    assert!(closed(&mut cut).await);

    let labels = [
        "bad_crc",
        "length_mismatch",
        "oversized",
        "unknown_cn",
        "bad_password",
        "unknown_mn",
        "truncated",
    ];
    r.until("every rejection counted", move |a| {
        labels.iter().all(|l| a.metrics.hj212.rejected(l) >= 1)
    })
    .await;
    for l in labels {
        assert_eq!(r.agg.metrics.hj212.rejected(l), 1, "{l}");
    }
    let m = r.agg.metrics.clone();
    r.until("dead letters committed", move |_| {
        m.rejected(dustwatch_protocol::RejectReason::BadFrame) == labels.len() as u64
            && m.rejected(dustwatch_protocol::RejectReason::NoValues) == 2
    })
    .await;
    assert_eq!(r.agg.metrics.hj212.rejected("no_values"), 2);
    assert_eq!(dead_letters(&r).await, labels.len() as u64 + 2);
    assert!(r.readings(0, i64::MAX).await.is_empty());

    let port = r.agg.http_addr.port();
    let (_, text) = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .expect("get");
    for l in labels {
        let key = format!("dustwatch_hj212_rejected_total{{reason=\"{l}\"}}");
        assert_eq!(metric(&text, &key), Some(1.0), "{key}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_slow_and_half_open_clients_do_not_take_the_listener_down() {
    let r = running(|c| {
        c.hj212.idle_timeout_s = 1;
        c.hj212.read_timeout_s = 1;
        c.hj212.max_bad_frames = 3;
    })
    .await;
    // Garbage lines: closed after three bad frames in a row.
    let mut garbage = TcpStream::connect(r.addr).await.expect("connect");
    let junk: Vec<u8> = (0..64u8)
        .flat_map(|i| [i.wrapping_mul(37), 0xff, b'#', b'\r', b'\n'])
        .collect();
    let _ = garbage.write_all(&junk).await;
    assert!(closed(&mut garbage).await);
    // Binary without any line end: skipped as oversized, then closed by the read timeout.
    let mut endless = TcpStream::connect(r.addr).await.expect("connect");
    let _ = endless.write_all(&[0x55u8; 5000]).await;
    assert!(closed(&mut endless).await);
    // Half-open: half a frame, then silence.
    let whole = frame(&segment(
        2011,
        5,
        MN1,
        "123456",
        "20170102150000000",
        "20170102150000",
        "a34002-Rtd=80",
    ));
    let mut half = TcpStream::connect(r.addr).await.expect("connect");
    half.write_all(&whole[..20]).await.expect("send");
    assert!(closed(&mut half).await);
    // Slow: one byte at a time, never finishing in time.
    let mut slow = TcpStream::connect(r.addr).await.expect("connect");
    let slow_task = tokio::spawn(async move {
        for b in whole.iter().take(40) {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed(&mut slow).await
    });
    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(r.addr).await.expect("connect");
    assert!(closed(&mut silent).await);
    assert!(slow_task.await.expect("slow client"));

    // The listener still serves a good device.
    let mut good = TcpStream::connect(r.addr).await.expect("connect");
    let seg = DOMAIN_SEGMENT.replace("Flag=4", "Flag=5");
    good.write_all(&frame(&seg)).await.expect("send");
    assert_eq!(reply(&mut good).await.cn, Cn::DataReply);

    let h = &r.agg.metrics.hj212;
    assert!(h.closed_for_errors.load(Relaxed) >= 1);
    assert!(h.timeouts.load(Relaxed) >= 3);
    assert!(h.rejected("truncated") >= 1);
    assert!(h.rejected("oversized") >= 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_holds_and_frees_up() {
    let r = running(|c| c.hj212.max_connections = 3).await;
    let mut open = Vec::new();
    for i in 0..3 {
        let mut s = TcpStream::connect(r.addr).await.expect("connect");
        let qn = format!("2017010215000000{i}");
        let seg = segment(
            2011,
            5,
            MN1,
            "123456",
            &qn,
            "20170102150000",
            "a34002-Rtd=80",
        );
        s.write_all(&frame(&seg)).await.expect("send");
        assert_eq!(reply(&mut s).await.qn, qn);
        open.push(s);
    }
    let mut extra = TcpStream::connect(r.addr).await.expect("connect");
    let _ = extra.write_all(&frame(DOMAIN_SEGMENT)).await;
    assert!(closed(&mut extra).await, "the fourth connection is closed");
    assert_eq!(r.agg.metrics.hj212.connections_refused.load(Relaxed), 1);
    assert_eq!(r.agg.metrics.hj212.connections_open.load(Relaxed), 3);

    drop(open.pop());
    let m = r.agg.metrics.clone();
    r.until("a connection closed", move |_| {
        m.hj212.connections_open.load(Relaxed) == 2
    })
    .await;
    let mut again = TcpStream::connect(r.addr).await.expect("connect");
    let seg = DOMAIN_SEGMENT.replace("Flag=4", "Flag=5");
    again.write_all(&frame(&seg)).await.expect("send");
    assert_eq!(reply(&mut again).await.cn, Cn::DataReply);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_frames_are_ingested_and_redelivery_stores_nothing_twice() {
    let r = running(|_| {}).await;
    let m = r.agg.metrics.clone();
    r.until("subscribed", move |_| m.mqtt_subscribed.load(Relaxed) == 1)
        .await;
    let root = TopicRoot::default();
    let topic = root.hj212("s1", "d7");
    let domain = frame(DOMAIN_SEGMENT);
    let minute = frame(&segment(
        2051,
        4,
        "ANY",
        "x",
        "20170102150100000",
        "20170102150000",
        "a34002-Avg=70.0,a34002-Flag=N",
    ));
    let mut bad_crc = domain.clone();
    let n = bad_crc.len();
    bad_crc[n - 3] = if bad_crc[n - 3] == b'0' { b'1' } else { b'0' };
    let msgs = vec![
        (topic.clone(), domain.clone()),
        // Without the final CRLF: accepted (MQTT frames the message itself).
        (topic.clone(), minute[..minute.len() - 2].to_vec()),
        // The same frame again, as a redelivery or a retrying bridge would send it.
        (topic.clone(), domain),
        (topic.clone(), bad_crc),
    ];
    let port = r.broker_port();
    publish_all(port, &format!("hj212-pub-{port}"), msgs).await;
    let m = r.agg.metrics.clone();
    r.until("frames committed", move |a| {
        a.metrics.duplicates.load(Relaxed) == 1
            && m.rejected(dustwatch_protocol::RejectReason::BadFrame) == 1
            && a.metrics.stored.load(Relaxed) == 2
    })
    .await;
    let got = r.readings(0, i64::MAX).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(d, _)| d == "d7"));
    let rt = got
        .iter()
        .find(|(_, x)| x.ts.ms() == T15)
        .expect("2011 reading");
    assert_eq!(rt.1.pm25, Some(245.0));
    let min = got
        .iter()
        .find(|(_, x)| x.ts.ms() == T15 + 60_000)
        .expect("2051 reading");
    assert_eq!((min.1.pm10, min.1.interval_s), (Some(70.0), 60));
    assert_eq!(r.agg.metrics.hj212.rejected("bad_crc"), 1);
    r.stop().await;
}

/// The simulator's HJ 212 devices end to end: frames on the `hj212` topic through a real broker
/// become readings of the right site, device and interval, one per minute of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_hj212_devices_are_ingested() {
    let broker = dustwatch_testkit::embedded_broker();
    let port = broker.addr().port();
    let scenario = sensors_sim::Scenario::parse(
        r#"
name = "hj212-bridge"
start = "2017-01-02T08:00:00+08:00"
duration = "30m"
timezone = "Asia/Shanghai"
interval_s = 60

[background]
pm25 = [["0h", 150.0], ["1h", 160.0]]

[[site]]
id = "hj-ref"
name = "Reference"
street = "Xincheng"
kind = "reference"
phase = "idle"

[[site]]
id = "hj-site"
name = "Monitor bridged from a platform"
street = "Xincheng"
phase = "structure"
reference = "hj-ref"
hj212 = ["m1"]
"#,
        "test",
    )
    .expect("scenario parses");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = dustwatch::config::Config::default();
    config.mqtt.url = format!("mqtt://127.0.0.1:{port}");
    config.mqtt.client_id = "hj212-sim-test".into();
    config.http.listen = "127.0.0.1:0".parse().expect("literal");
    config.store.data_dir = data.path().to_path_buf();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let agg =
        dustwatch::app::Aggregator::start(&config, scenario.registry().sites, shutdown.clone())
            .await
            .expect("aggregator starts");
    wait_subscribed(&agg).await;
    let sim = sensors_sim::Sim::new(
        scenario,
        sensors_sim::SimOptions {
            host: "127.0.0.1".into(),
            port,
            speed: sensors_sim::Speed::Max,
            client_prefix: "hj212-sim".into(),
            ..Default::default()
        },
    );
    sim.run(shutdown.child_token())
        .await
        .expect("simulation runs");
    let reader = agg.reader.clone();
    let readings = tokio::task::spawn_blocking(move || {
        eventually(30, "30 minutes of HJ 212 readings", || {
            let r = reader
                .readings("hj-site", 0, i64::MAX)
                .expect("store readable");
            (r.len() >= 30).then_some(r)
        })
    })
    .await
    .expect("wait");
    assert_eq!(readings.len(), 30, "one reading per minute, none twice");
    assert!(readings.iter().all(|(device, r)| device == "m1"
        && r.interval_s == 60
        && r.pm10.is_some()
        && r.boot == 0));
    let counts = agg.reader.counts().expect("counts");
    assert_eq!(counts.dead_letters, 0, "every frame decoded");
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

/// A scenario with `devices` monitors speaking HJ 212 over TCP on site `hj-tcp` (and, with
/// `reference`, a reference station speaking JSON over MQTT).
fn tcp_scenario(duration: &str, devices: u32, reference: bool) -> sensors_sim::Scenario {
    let ids: Vec<String> = (1..=devices).map(|i| format!("\"m{i}\"")).collect();
    let mut text = format!(
        r#"
name = "hj212-tcp"
start = "2017-01-02T08:00:00+08:00"
duration = "{duration}"
timezone = "Asia/Shanghai"
interval_s = 60

[background]
pm25 = [["0h", 150.0], ["2h", 160.0]]

[[site]]
id = "hj-tcp"
name = "Monitors reporting to a platform"
street = "Xincheng"
phase = "structure"
devices = {devices}
hj212_tcp = [{}]
"#,
        ids.join(", ")
    );
    if reference {
        text.push_str(
            r#"
[[site]]
id = "hj-ref"
name = "Reference"
street = "Xincheng"
kind = "reference"
phase = "idle"
"#,
        );
    }
    sensors_sim::Scenario::parse(&text, "test").expect("scenario parses")
}

/// An aggregator on `broker_port` with its HJ 212 listener on `hj212` (port 0: a free one),
/// registering the scenario's sites and `[[device]]` tables.
async fn tcp_aggregator(
    scenario: &sensors_sim::Scenario,
    broker_port: u16,
    data: &std::path::Path,
    hj212: SocketAddr,
    shutdown: CancellationToken,
) -> Aggregator {
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
    c.mqtt.client_id = format!("hj212-tcp-sim-{broker_port}");
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c.hj212.listen = Some(hj212);
    Aggregator::start_with(&c, scenario.registry(), shutdown)
        .await
        .expect("aggregator starts")
}

/// What the simulator sends, captured by a platform that answers every frame with 9014.
async fn capture_frames(
    scenario: sensors_sim::Scenario,
    options: sensors_sim::SimOptions,
) -> Vec<Frame> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = frames.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                while let Some(line) = read_line(&mut s).await {
                    let f = hj212::decode(&line).expect("valid frame");
                    let reply = hj212::encode(&hj212::data_reply(&f)).expect("reply");
                    sink.lock().expect("lock").push(f);
                    if s.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let options = sensors_sim::SimOptions {
        hj212_platform: Some(addr.to_string()),
        // Its JSON readings must not reach the aggregator under test.
        topic_root: TopicRoot::new("capture/v1"),
        client_prefix: "capture".into(),
        ..options
    };
    sensors_sim::Sim::new(scenario, options)
        .run(CancellationToken::new())
        .await
        .expect("capture run");
    server.abort();
    let out = frames.lock().expect("lock").clone();
    out
}

fn sim_options(broker_port: u16) -> sensors_sim::SimOptions {
    sensors_sim::SimOptions {
        seed: 7,
        backoff_max: Duration::from_millis(300),
        ..fleet::sim_options(broker_port, "hj212-tcp-sim")
    }
}

async fn site_readings(
    agg: &Aggregator,
    site: &'static str,
    at_least: usize,
) -> Vec<(String, Reading)> {
    let reader = agg.reader.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "HJ 212 TCP readings in the store", || {
            let r = reader.readings(site, 0, i64::MAX).expect("store readable");
            (r.len() >= at_least).then_some(r)
        })
    })
    .await
    .expect("wait")
}

/// The simulator's HJ 212 TCP devices against the real listener: every minute of each device is
/// stored once, under the registry's site and device, with the values the simulator sent (a
/// second run with the same seed, captured by a plain TCP server, is the reference).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_hj212_tcp_devices_are_ingested_over_tcp() {
    let broker = embedded_broker();
    let port = broker.addr().port();
    let sent = capture_frames(tcp_scenario("30m", 2, true), sim_options(port)).await;
    assert_eq!(sent.len(), 60, "2 devices x 30 minutes");

    let data = tempfile::tempdir().expect("temp dir");
    let scenario = tcp_scenario("30m", 2, true);
    let shutdown = CancellationToken::new();
    let any_port = "127.0.0.1:0".parse().expect("literal");
    let agg = tcp_aggregator(&scenario, port, data.path(), any_port, shutdown.clone()).await;
    wait_subscribed(&agg).await;
    let options = sensors_sim::SimOptions {
        hj212_platform: agg.hj212_addr.map(|a| a.to_string()),
        ..sim_options(port)
    };
    let summary = sensors_sim::Sim::new(scenario, options)
        .run(shutdown.child_token())
        .await
        .expect("simulation runs");
    // 60 TCP readings answered by 9014 after their commit, 30 reference readings by PUBACK.
    assert_eq!((summary.acked, summary.unanswered), (90, 0), "{summary:?}");

    let stored = site_readings(&agg, "hj-tcp", 60).await;
    assert_eq!(
        stored.len(),
        60,
        "one reading per device and minute, none twice"
    );
    let profile = DeviceProfile::default();
    for (device, r) in &stored {
        assert!(device == "m1" || device == "m2", "{device}");
        assert_eq!((r.interval_s, r.boot), (60, 0));
        let frame = sent
            .iter()
            .find(|f| {
                f.mn == format!("hj-tcp.{device}")
                    && hj212::read_values(f, &profile, 0, 0).map(|x| x.reading.ts) == Ok(r.ts)
            })
            .expect("a frame the simulator sent for this device and minute");
        let expected = hj212::read_values(frame, &profile, r.seq, r.boot)
            .expect("reading")
            .reading;
        assert_eq!(r, &expected, "stored values are the simulator's");
    }
    assert_eq!(agg.metrics.hj212.readings.load(Relaxed), 60);
    let counts = agg.reader.counts().expect("counts");
    assert_eq!(
        counts.dead_letters, 0,
        "every frame accepted (MN and PW as registered)"
    );
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

/// The listener goes away mid-run and comes back on the same address: the device keeps its
/// readings in its store-and-forward buffer, reconnects, and the store ends with every minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hj212_tcp_listener_down_then_up_leaves_no_gap() {
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let scenario = tcp_scenario("1h", 1, false);
    let plan = scenario.plan(&Default::default()).expect("plan");
    let first = CancellationToken::new();
    let any_port = "127.0.0.1:0".parse().expect("literal");
    let agg = tcp_aggregator(&scenario, port, data.path(), any_port, first.clone()).await;
    let addr = agg.hj212_addr.expect("listener bound");

    // 10 simulated minutes per real second: the outage below spans several readings.
    let options = sensors_sim::SimOptions {
        hj212_platform: Some(addr.to_string()),
        speed: sensors_sim::Speed::Factor(600.0),
        ..sim_options(port)
    };
    let sim = sensors_sim::Sim::new(tcp_scenario("1h", 1, false), options);
    let stats = sim.stats();
    let run = tokio::spawn(sim.run(CancellationToken::new()));

    site_readings(&agg, "hj-tcp", 10).await;
    first.cancel();
    agg.wait().await.expect("first aggregator stops");
    // Wait in event terms: until the device holds readings it could not deliver.
    tokio::task::spawn_blocking({
        let stats = stats.clone();
        move || {
            eventually(30, "readings buffered during the outage", || {
                (stats.buffered.load(Relaxed) >= 5).then_some(())
            })
        }
    })
    .await
    .expect("wait");

    let second = CancellationToken::new();
    let agg = tcp_aggregator(&scenario, port, data.path(), addr, second.clone()).await;
    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends")
        .expect("join")
        .expect("simulation runs");
    assert_eq!((summary.acked, summary.unsent), (60, 0), "{summary:?}");
    assert!(summary.reconnects >= 1, "{summary:?}");

    let stored = site_readings(&agg, "hj-tcp", 60).await;
    let ts: Vec<i64> = stored.iter().map(|(_, r)| r.ts.ms()).collect();
    let expected: Vec<i64> = (1..=60).map(|i| plan.start_ms + i * 60_000).collect();
    assert_eq!(ts, expected, "every minute once, no gap");
    second.cancel();
    agg.wait().await.expect("clean stop");
}
