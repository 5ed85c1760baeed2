//! HJ 212 over TCP: simulated monitors against a small in-test platform. Frames decode with a
//! valid CRC, carry the registry's MN and PW and ask for a reply; 9014 replies are consumed;
//! unreplied frames are sent again after a reconnect, in order, and late ones are retried and
//! finally given up.

mod support;

use dustwatch_protocol::hj212::{self, Cn, Frame};
use sensors_sim::{Scenario, Sim, SimError, SimOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
name = "hj212-tcp"
start = "2017-01-02T08:00:00+08:00"
duration = "30m"
timezone = "Asia/Shanghai"
interval_s = 60

[background]
pm25 = [["0h", 150.0], ["1h", 160.0]]

[[site]]
id = "ref"
name = "Reference"
street = "Xincheng"
kind = "reference"
phase = "idle"

[[site]]
id = "tcp-site"
name = "Monitors on a platform"
street = "Xincheng"
phase = "structure"
reference = "ref"
devices = 2
hj212_tcp = ["m1", "m2"]
"#;

/// How the in-test platform treats a connection.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Reply 9014 to every frame.
    ReplyAll,
    /// Once only: reply to this many frames of a connection, then hang up (later connections:
    /// reply to all). Connections that send nothing (the simulator's reachability probe) do not
    /// count.
    HangUpAfter(usize),
    /// Never reply.
    Silent,
}

/// Frames received, per connection in accept order.
type Received = Arc<Mutex<Vec<Vec<Frame>>>>;

/// A tiny HJ 212 platform: every line must be a valid frame (CRC checked by `decode`).
async fn platform(mode: Mode) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let received: Received = Arc::default();
    let rec = received.clone();
    let hung_up = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            rec.lock().expect("lock").push(Vec::new());
            let limit = match mode {
                Mode::ReplyAll => Some(usize::MAX),
                Mode::HangUpAfter(k) => Some(k),
                Mode::Silent => None,
            };
            tokio::spawn(serve(stream, n, limit, rec.clone(), hung_up.clone()));
            n += 1;
        }
    });
    (addr, received)
}

/// Serve one connection: record frames, reply to the first `limit` (none when `None`), then
/// close the writing side and drain, so the device reads every reply before it sees the end.
async fn serve(
    stream: TcpStream,
    conn: usize,
    limit: Option<usize>,
    rec: Received,
    once: Arc<AtomicBool>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; 4096];
    let mut line = Vec::new();
    let mut replied = 0usize;
    let mut hung_up = false;
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if hung_up {
            continue;
        }
        for &b in &buf[..n] {
            line.push(b);
            if b != b'\n' {
                continue;
            }
            let frame = hj212::decode(&line).expect("every frame decodes with a valid CRC");
            line.clear();
            rec.lock().expect("lock")[conn].push(frame.clone());
            match limit {
                Some(k) if replied < k || once.load(Ordering::Relaxed) => {
                    let reply = hj212::encode(&hj212::data_reply(&frame)).expect("reply");
                    wr.write_all(&reply).await.expect("write reply");
                    replied += 1;
                }
                Some(_) => {
                    once.store(true, Ordering::Relaxed);
                    let _ = wr.shutdown().await;
                    hung_up = true;
                    break;
                }
                None => {}
            }
        }
    }
}

fn options(platform: &str) -> (SimOptions, dustwatch_broker::EmbeddedBroker) {
    // The city warning-level feed still goes to an MQTT broker.
    let broker = dustwatch_testkit::embedded_broker();
    let mut o = support::options(broker.addr().port(), "tcp/v1", 3);
    o.hj212_platform = Some(platform.to_string());
    o.backoff_min = Duration::from_millis(50);
    o.backoff_max = Duration::from_millis(500);
    (o, broker)
}

fn data_times(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f.cp.data_time.map(|t| t.to_string()).expect("DataTime"))
        .collect()
}

fn scenario() -> Scenario {
    Scenario::parse(SCENARIO, "test").expect("scenario parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_devices_send_valid_minute_frames_and_consume_replies() {
    let (addr, received) = platform(Mode::ReplyAll).await;
    let (o, _broker) = options(&addr);
    let sim = Sim::new(scenario(), o);
    let summary = sim.run(CancellationToken::new()).await.expect("runs");
    // 3 devices x 30 minutes (the reference station speaks JSON over MQTT), every one answered.
    assert_eq!(summary.generated, 90);
    assert_eq!(summary.acked, 90, "{summary:?}");
    assert_eq!((summary.unsent, summary.unanswered), (0, 0));

    let reg = scenario().registry();
    let frames: Vec<Frame> = received.lock().expect("lock").concat();
    assert_eq!(frames.len(), 60, "no frame sent twice");
    for f in &frames {
        assert_eq!(f.cn, Cn::Minute);
        assert!(f.wants_reply(), "Flag asks for the 9014 reply");
        let d = reg
            .devices
            .iter()
            .find(|d| d.mn.as_deref() == Some(f.mn.as_str()))
            .expect("MN is one the registry lists");
        assert_eq!(Some(f.pw.as_str()), d.password.as_deref());
        let r = hj212::read_values(f, &d.profile(), 0, 0)
            .expect("a reading")
            .reading;
        assert_eq!(r.interval_s, 60);
        assert!(r.pm10.is_some() && r.pm25.is_some());
    }
    for mn in ["tcp-site.m1", "tcp-site.m2"] {
        let mine: Vec<Frame> = frames.iter().filter(|f| f.mn == mn).cloned().collect();
        let times = data_times(&mine);
        let mut sorted = times.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(times, sorted, "{mn}: minutes in order, none twice");
        assert_eq!(times.len(), 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreplied_frames_are_sent_again_in_order_after_a_reconnect() {
    let (addr, received) = platform(Mode::HangUpAfter(5)).await;
    let (mut o, _broker) = options(&addr);
    // One device keeps the order easy to read.
    o.devices = None;
    let text = SCENARIO.replace(
        "devices = 2\nhj212_tcp = [\"m1\", \"m2\"]",
        "hj212_tcp = [\"m1\"]",
    );
    let s = Scenario::parse(&text, "test").expect("scenario parses");
    let summary = Sim::new(s, o)
        .run(CancellationToken::new())
        .await
        .expect("runs");
    // The TCP device and the reference station (JSON over MQTT): 30 readings each.
    assert_eq!((summary.acked, summary.unanswered), (60, 0), "{summary:?}");
    assert!(summary.reconnects >= 1, "{summary:?}");

    let conns: Vec<Vec<Frame>> = received
        .lock()
        .expect("lock")
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    assert!(conns.len() >= 2, "the device came back");
    let first = data_times(&conns[0]);
    let rest = data_times(&conns[1..].concat());
    // The five answered frames are never sent again; the first unanswered one opens the next
    // connection, and from there every minute follows in order up to the end.
    assert_eq!(
        rest.first(),
        first.get(5),
        "backlog resent from the first unanswered frame"
    );
    let mut all: Vec<String> = first[..5].to_vec();
    all.extend(rest.iter().cloned());
    let mut expected = all.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(
        all, expected,
        "in order, no duplicates, across the reconnect"
    );
    assert_eq!(all.len(), 30, "no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_are_retried_then_given_up() {
    let (addr, received) = platform(Mode::Silent).await;
    let (mut o, _broker) = options(&addr);
    o.hj212_reply_timeout = Duration::from_millis(100);
    o.hj212_retries = 1;
    let summary = Sim::new(scenario(), o)
        .run(CancellationToken::new())
        .await
        .expect("runs");
    // Only the reference station's JSON readings are acknowledged (by the broker).
    assert_eq!((summary.acked, summary.unanswered), (30, 60), "{summary:?}");
    let frames: Vec<Frame> = received.lock().expect("lock").concat();
    // Each frame: the first try and one retry, same QN.
    assert_eq!(frames.len(), 120);
    let mut qns: Vec<&str> = frames.iter().map(|f| f.qn.as_str()).collect();
    qns.sort();
    assert!(qns.chunks(2).all(|c| c.len() == 2 && c[0] == c[1]));
}

#[tokio::test]
async fn tcp_devices_without_a_platform_do_not_start() {
    let o = SimOptions {
        port: dustwatch_testkit::free_port(),
        ..Default::default()
    };
    let err = Sim::new(scenario(), o)
        .run(CancellationToken::new())
        .await
        .expect_err("no platform");
    assert!(
        matches!(err, SimError::NoPlatform { count: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--hj212-platform"));
}
