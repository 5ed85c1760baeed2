//! The HJ 212 listener against hostile clients over real TCP: a flood of idle sockets from one
//! address, guesses at MNs and passwords, and a device without a password in the registry.

mod support;

use dustwatch_protocol::hj212::{Cn, Frame};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use support::hj212::*;
use tokio::io::AsyncWriteExt;

const DEVICE: [u8; 4] = [127, 0, 0, 1];
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// Send `frame` and read its reply.
async fn ask(s: &mut tokio::net::TcpStream, frame: &[u8]) -> Frame {
    s.write_all(frame).await.expect("send");
    reply(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_lock_out_a_device_from_another() {
    let l = Listener::start(REGISTRY, |c| {
        c.hj212.max_connections = 40;
        c.hj212.max_connections_per_addr = 8;
        c.hj212.first_frame_timeout_s = 2;
    })
    .await;
    // One client opens more idle sockets than the whole listener takes.
    let mut flood = Vec::new();
    for _ in 0..60 {
        flood.push(l.connect_from(ATTACKER).await);
    }
    let m = l.agg.metrics.clone();
    l.until("the flood refused beyond the per-address cap", move |_| {
        m.hj212.connections_refused_per_addr.load(Relaxed) >= 52
    })
    .await;
    assert_eq!(l.agg.metrics.hj212.connections_refused.load(Relaxed), 0);

    // The real device, from another address, gets in and its data is answered.
    let mut device = l.connect_from(DEVICE).await;
    let ack = ask(&mut device, &data_frame(MN1, PW1, "20170102150000001", 0)).await;
    assert_eq!(ack.cn, Cn::DataReply);

    // The flood's sockets never sent a valid frame: closed by the first-frame timeout, while
    // the logged-in device stays connected.
    for s in flood.iter_mut().take(8) {
        assert!(closed(s).await, "an idle socket is closed");
    }
    let ack = ask(&mut device, &data_frame(MN1, PW1, "20170102150100001", 1)).await;
    assert_eq!(ack.cn, Cn::DataReply);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_mn_and_wrong_password_get_identical_replies() {
    let l = Listener::start(REGISTRY, |c| c.hj212.auth_delay_ms = 50).await;
    let qn = "20170102150000001";
    let mut a = l.connect_from(ATTACKER).await;
    let wrong_pw = ask(&mut a, &data_frame(MN1, "000000", qn, 0)).await;
    let mut b = l.connect_from([127, 0, 0, 3]).await;
    let unknown_mn = ask(
        &mut b,
        &data_frame("NOBODY000000000000000001", "000000", qn, 0),
    )
    .await;
    assert_eq!(wrong_pw.cn, Cn::RequestReply);
    // The reply echoes the frame's MN and PW (the same here); all else is equal, to the byte.
    let same_mn = Frame {
        mn: MN1.into(),
        ..unknown_mn.clone()
    };
    assert_eq!(same_mn, wrong_pw);
    assert_eq!(
        dustwatch_protocol::hj212::encode(&same_mn).expect("encode"),
        dustwatch_protocol::hj212::encode(&wrong_pw).expect("encode")
    );
    let h = &l.agg.metrics.hj212;
    assert_eq!(
        (h.rejected("bad_password"), h.rejected("unknown_mn")),
        (1, 1)
    );
    assert_eq!(
        h.auth_delayed.load(Relaxed),
        2,
        "both paid the same first delay"
    );
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_slowed_and_locked_out_and_the_device_gets_in_after() {
    let l = Listener::start(REGISTRY, |c| {
        c.hj212.auth_delay_ms = 200;
        c.hj212.auth_delay_max_ms = 400;
        c.hj212.lockout_after = 3;
        c.hj212.lockout_s = 4;
        c.hj212.max_bad_frames = 100;
    })
    .await;
    // The device logged in once from its own address before the attack.
    let mut device = l.connect_from(DEVICE).await;
    let ack = ask(&mut device, &data_frame(MN1, PW1, "20170102150000001", 0)).await;
    assert_eq!(ack.cn, Cn::DataReply);
    drop(device);

    // Three guesses: each refusal waits longer (200, 400, 400 ms at least), the third locks the
    // MN and the guessing address out.
    let mut a = l.connect_from(ATTACKER).await;
    for (i, pw) in ["000000", "111111", "222222"].iter().enumerate() {
        let r = ask(
            &mut a,
            &data_frame(MN1, pw, &format!("2017010215000000{i}"), 0),
        )
        .await;
        assert_eq!((r.cn, r.cp.param("QnRtn")), (Cn::RequestReply, Some("3")));
    }
    // Each refusal was held back (how long grows is the guard's unit test; no clock is read
    // here).
    assert_eq!(l.agg.metrics.hj212.auth_delayed.load(Relaxed), 3);
    assert_eq!(l.agg.metrics.hj212.lockouts.load(Relaxed), 1);

    // Locked out: even the right password from the guessing address gets the same refusal.
    let r = ask(&mut a, &data_frame(MN1, PW1, "20170102150000009", 0)).await;
    assert_eq!((r.cn, r.cp.param("QnRtn")), (Cn::RequestReply, Some("3")));
    assert_eq!(l.agg.metrics.hj212.rejected("locked_out"), 1);

    // The device's own address is not held by its MN's lockout.
    let mut device = l.connect_from(DEVICE).await;
    let ack = ask(&mut device, &data_frame(MN1, PW1, "20170102150100001", 1)).await;
    assert_eq!(ack.cn, Cn::DataReply);

    // Once the lockout ends, the right password from the other address gets in again.
    let deadline = Instant::now() + GUARD;
    let mut minute = 2;
    loop {
        let mut s = l.connect_from(ATTACKER).await;
        let r = ask(&mut s, &data_frame(MN1, PW1, "20170102150200001", minute)).await;
        if r.cn == Cn::DataReply {
            break;
        }
        assert!(Instant::now() < deadline, "never let in after the lockout");
        minute += 1;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_rate_limited_dead_letters_and_are_all_counted() {
    let l = Listener::start(REGISTRY, |c| {
        c.hj212.auth_delay_ms = 1;
        c.hj212.auth_delay_max_ms = 1;
        c.hj212.lockout_after = 1_000;
        c.hj212.max_bad_frames = 1_000;
        c.hj212.auth_dead_letters_per_min = 2;
    })
    .await;
    let mut a = l.connect_from(ATTACKER).await;
    for i in 0..6 {
        let r = ask(
            &mut a,
            &data_frame(MN1, "000000", &format!("2017010215000000{i}"), 0),
        )
        .await;
        assert_eq!(r.cn, Cn::RequestReply);
    }
    let h = &l.agg.metrics.hj212;
    assert_eq!(h.rejected("bad_password"), 6);
    assert_eq!(h.auth_dead_letters_dropped.load(Relaxed), 4);
    let reader = l.agg.reader.clone();
    l.until("two dead letters stored", move |_| {
        reader.counts().is_ok_and(|c| c.dead_letters == 2)
    })
    .await;
    let port = l.agg.http_addr.port();
    let (_, text) = tokio::task::spawn_blocking(move || support::http_get(port, "/metrics"))
        .await
        .expect("get");
    assert_eq!(
        support::metric(&text, "dustwatch_hj212_auth_dead_letters_dropped_total"),
        Some(4.0)
    );
    l.stop().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn devices_without_a_password_are_named_at_start() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let registry = format!(
        "{REGISTRY}\n[[device]]\nsite = \"s1\"\nid = \"open-door\"\nmn = \"410108HJ0000000000000077\"\n"
    );
    let l = Listener::start(&registry, |_| {}).await;
    let text = String::from_utf8(log.0.lock().expect("log buffer").clone()).expect("utf-8");
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("has no password"))
        .collect();
    assert_eq!(warned.len(), 1, "{text}");
    assert!(warned[0].contains("open-door") && warned[0].contains("410108HJ0000000000000077"));
    l.stop().await;
}
