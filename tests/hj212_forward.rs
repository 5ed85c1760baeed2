//! Forwarding to an upstream platform over HJ 212: a platform written here (a TCP server that
//! parses frames and answers 9014) is stopped mid-stream and started again on the same port;
//! every stored reading arrives once, in order, re-encoded under the target's MN and PW. A
//! platform that misses a reply gets the frame again.

mod support;

use dustwatch::hj212_forward::ForwardConfig;
use dustwatch_protocol::hj212::{self, Cn, Frame};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use support::hj212::*;
use support::{http_get, metric};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the platform received, in order.
type Received = Arc<Mutex<Vec<Frame>>>;

/// An upstream platform: accepts connections, decodes each CRLF-terminated frame, records it
/// and answers a 9014 when the frame asks for one, except to the first `silent` frames.
struct Platform {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Platform {
    async fn start(addr: SocketAddr, received: Received, silent: usize) -> Platform {
        let listener = TcpListener::bind(addr).await.expect("bind the platform");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            // Dropped with this task: aborting the platform closes every connection.
            let mut conns = JoinSet::new();
            let silent = Arc::new(Mutex::new(silent));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let received = received.clone();
                let silent = silent.clone();
                conns.spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut r = BufReader::new(r);
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match r.read_until(b'\n', &mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let frame = hj212::decode(&line).expect("the forwarder sends valid frames");
                        received.lock().expect("lock").push(frame.clone());
                        let quiet = {
                            let mut s = silent.lock().expect("lock");
                            let q = *s > 0;
                            *s = s.saturating_sub(1);
                            q
                        };
                        if frame.flag.is_some_and(|f| f & hj212::FLAG_REPLY != 0) && !quiet {
                            let reply = hj212::encode(&hj212::data_reply(&frame)).expect("reply");
                            if w.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Platform { addr, task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn target(addr: SocketAddr, reply_timeout_ms: u64) -> ForwardConfig {
    toml::from_str(&format!(
        "name = \"city\"\naddress = \"{addr}\"\nmn = \"CITY0001\"\npw = \"up-pw\"\nreply = true\n\
         reply_timeout_ms = {reply_timeout_ms}\nmax_backoff_s = 1"
    ))
    .expect("target")
}

/// The DataTime minutes of what arrived.
fn minutes(received: &Received) -> Vec<u32> {
    received
        .lock()
        .expect("lock")
        .iter()
        .map(|f| {
            let t = f.cp.data_time.expect("DataTime").to_string();
            t[10..12].parse().expect("minute")
        })
        .collect()
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within the guard time: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn send_minutes(s: &mut tokio::net::TcpStream, range: std::ops::Range<u32>) {
    for m in range {
        s.write_all(&data_frame(MN1, PW1, &m.to_string(), m))
            .await
            .expect("send");
        assert_eq!(reply(s).await.cn, Cn::DataReply, "stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_arrives_once_in_order_across_an_outage() {
    let received: Received = Arc::default();
    let platform = Platform::start("127.0.0.1:0".parse().expect("addr"), received.clone(), 0).await;
    let addr = platform.addr;
    let l = Listener::start(REGISTRY, |c| c.hj212.forward = vec![target(addr, 5_000)]).await;
    let mut device = l.connect_from([127, 0, 0, 1]).await;

    send_minutes(&mut device, 0..5).await;
    until("the first five forwarded", || {
        received.lock().expect("lock").len() == 5
    })
    .await;
    platform.stop().await;

    // The platform is down: these are stored and wait in the queue.
    send_minutes(&mut device, 5..12).await;
    let c = l.agg.metrics.hj212_forward.target("city");
    until("seven waiting after failed attempts", || {
        c.errors.load(Relaxed) > 0 && c.backlog.load(Relaxed) == 7
    })
    .await;
    let http = l.agg.http_addr.port();
    let text = tokio::task::spawn_blocking(move || http_get(http, "/metrics").1)
        .await
        .expect("get");
    let backlog = metric(&text, r#"dustwatch_hj212_forward_backlog{target="city"}"#);
    assert_eq!(backlog, Some(7.0), "backlog while down");
    assert!(metric(
        &text,
        r#"dustwatch_hj212_forward_errors_total{target="city"}"#
    )
    .is_some_and(|e| e >= 1.0));

    let again = Platform::start(addr, received.clone(), 0).await;
    until("all twelve forwarded", || {
        received.lock().expect("lock").len() >= 12
    })
    .await;
    until("the cursor at the end", || c.backlog.load(Relaxed) == 0).await;
    assert_eq!(
        minutes(&received),
        (0..12).collect::<Vec<_>>(),
        "once each, in order"
    );
    for f in received.lock().expect("lock").iter() {
        assert_eq!(
            (f.mn.as_str(), f.pw.as_str(), f.cn, f.st),
            ("CITY0001", "up-pw", Cn::RealTime, 39)
        );
        let pm10 =
            f.cp.factors
                .iter()
                .find(|x| x.factor == hj212::Factor::Pm10)
                .expect("PM10");
        assert_eq!(
            pm10.rtd.as_ref().map(|n| n.value()),
            Some(80.0),
            "the stored value"
        );
    }
    assert_eq!(c.sent.load(Relaxed), 12);
    again.stop().await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_reply_means_the_frame_is_sent_again() {
    let received: Received = Arc::default();
    // The first frame gets no 9014.
    let platform = Platform::start("127.0.0.1:0".parse().expect("addr"), received.clone(), 1).await;
    let l = Listener::start(REGISTRY, |c| {
        c.hj212.forward = vec![target(platform.addr, 300)]
    })
    .await;
    let mut device = l.connect_from([127, 0, 0, 1]).await;
    send_minutes(&mut device, 0..3).await;
    until("three acknowledged", || {
        l.agg
            .metrics
            .hj212_forward
            .target("city")
            .sent
            .load(Relaxed)
            == 3
    })
    .await;
    assert_eq!(
        minutes(&received),
        [0, 0, 1, 2],
        "the unacknowledged frame again, then the rest"
    );
    assert!(
        l.agg
            .metrics
            .hj212_forward
            .target("city")
            .errors
            .load(Relaxed)
            >= 1
    );
    platform.stop().await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_aggregator_resumes_after_what_was_sent() {
    use dustwatch::app::Aggregator;
    use dustwatch::config::Config;
    use tokio_util::sync::CancellationToken;

    let received: Received = Arc::default();
    let platform = Platform::start("127.0.0.1:0".parse().expect("addr"), received.clone(), 0).await;
    let broker = support::embedded_broker();
    let data = tempfile::tempdir().expect("temp dir");
    let registry = data.path().join("registry.toml");
    std::fs::write(&registry, REGISTRY).expect("write registry");
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{}", broker.addr().port());
    c.mqtt.client_id = format!("forward-restart-{}", broker.addr().port());
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.path().join("store");
    c.registry.file = Some(registry);
    c.hj212.listen = Some("127.0.0.1:0".parse().expect("literal"));
    c.hj212.forward = vec![target(platform.addr, 5_000)];
    let platform_addr = platform.addr;

    let start = || async {
        let shutdown = CancellationToken::new();
        let agg = Aggregator::start(&c, vec![], shutdown.clone())
            .await
            .expect("aggregator starts");
        let device = tokio::net::TcpStream::connect(agg.hj212_addr.expect("listener"))
            .await
            .expect("connect");
        (agg, device, shutdown)
    };
    // Run 1: three forwarded, then the platform goes down and two more wait in the queue.
    let (agg, mut device, shutdown) = start().await;
    send_minutes(&mut device, 0..3).await;
    until("three forwarded", || {
        received.lock().expect("lock").len() == 3
    })
    .await;
    platform.stop().await;
    send_minutes(&mut device, 3..5).await;
    let c1 = agg.metrics.hj212_forward.target("city");
    until("two waiting", || c1.backlog.load(Relaxed) == 2).await;
    drop(device);
    shutdown.cancel();
    agg.wait().await.expect("clean stop");

    // Run 2: the platform is back; the waiting two go first, then the new one.
    let platform = Platform::start(platform_addr, received.clone(), 0).await;
    let (agg, mut device, shutdown) = start().await;
    send_minutes(&mut device, 5..6).await;
    until("six forwarded", || {
        received.lock().expect("lock").len() >= 6
    })
    .await;
    let c2 = agg.metrics.hj212_forward.target("city");
    until("nothing waiting", || c2.backlog.load(Relaxed) == 0).await;
    assert_eq!(
        minutes(&received),
        (0..6).collect::<Vec<_>>(),
        "once each, in order, across the restart"
    );
    drop(device);
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
    platform.stop().await;
}
