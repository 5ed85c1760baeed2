//! The HTTP server against hostile clients over real sockets: query parameters at the edges,
//! security headers, the token checked before the body, the city level validated before it is
//! published, slow and idle connections, a connection limit, and the live-stream hub.

mod support;

use std::time::{Duration, Instant};
use support::http::*;
use support::{eventually, metric};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("checks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_query_parameters_are_clear_400s_not_panics() {
    let w = Web::start(|_| {}).await;
    let port = w.port;
    blocking(move || {
        let min = i64::MIN;
        let max = i64::MAX;
        for path in [
            "/api/sites/s1/series?step=2305843009213693952".to_string(),
            "/api/sites/s1/series?step=0".to_string(),
            format!("/api/sites/s1/series?from={min}&to={max}&step=9223372036854775807"),
            format!("/api/sites/s1/series?from={min}&to={max}"),
            // 401 days with a step that keeps the points few: still past the 400-day limit.
            "/api/sites/s1/series?from=0&to=34646400000&step=86400".to_string(),
            format!("/api/sites/s1/series.csv?from={min}&to={max}&step=2305843009213693952"),
            format!("/charts/sites/s1.svg?from={min}&to={max}"),
            format!("/charts/sites/s1.svg?from=-9223372036854775807&to={max}"),
            "/api/rankings?from=0001-01-01&to=9999-12-31".to_string(),
        ] {
            let r = request(port, "GET", &path, None, "");
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            assert!(r.body.contains("error"), "{path}: {}", r.body);
        }
        // The server is still up and answers in range.
        let r = request(
            port,
            "GET",
            "/api/sites/s1/series?from=0&to=86400000",
            None,
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let w = Web::start(|_| {}).await;
    let port = w.port;
    blocking(move || {
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/sites/s1"),
            ("GET", "/api/sites"),
            ("GET", "/charts/sites/s1.svg"),
            ("GET", "/metrics"),
            ("GET", "/no-such-page"),
            ("PUT", "/api/city/level"),
        ] {
            let r = request(port, method, path, None, "");
            let csp = r.header("content-security-policy").unwrap_or_default();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
            assert!(csp.contains("default-src 'self'"), "{path}: {csp:?}");
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{path}"
            );
            assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
            assert!(
                !csp.contains("script-src 'self' 'unsafe-inline'"),
                "{path}: {csp:?}"
            );
        }
        // Pages allow exactly their own scripts, by a nonce fresh for each response.
        let mut nonces = Vec::new();
        for path in [
            "/",
            "/sites/s1",
            "/alerts",
            "/dashboards",
            "/dashboards/office",
            "/",
        ] {
            let r = request(port, "GET", path, None, "");
            let csp = r.header("content-security-policy").unwrap_or_default();
            let nonce = csp
                .split("'nonce-")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .unwrap_or_else(|| panic!("{path}: no nonce in {csp:?}"));
            let scripts = r.body.matches("<script").count();
            assert!(scripts >= 1, "{path}");
            assert_eq!(
                r.body
                    .matches(&format!("<script nonce=\"{nonce}\""))
                    .count(),
                scripts,
                "{path}: every script carries the nonce"
            );
            // No code inline: the page's words are data, its script is the shared file.
            for tag in r.body.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap_or_default();
                assert!(
                    open.contains("src=\"/assets/dustwatch.js\"")
                        || open.contains("type=\"application/json\""),
                    "{path}: inline script <script{open}>"
                );
            }
            nonces.push(nonce.to_owned());
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 6, "a fresh nonce per response");
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_token_is_checked_before_the_body_is_read() {
    let w = Web::start(|_| {}).await;
    let port = w.port;
    blocking(move || {
        // A body that does not parse: no token is a 401, not a parse error.
        for (method, path) in [("PUT", "/api/city/level"), ("POST", "/api/alerts/1/ack")] {
            let r = request(port, method, path, None, "{not json");
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
            let r = request(port, method, path, Some("wrong-token"), "{not json");
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        }
        // A body announced but never sent: the 401 comes without waiting for it.
        let mut s = raw(port);
        send(
            &mut s,
            b"PUT /api/city/level HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{",
        );
        let (got, _) = read_until(&mut s, "\r\n\r\n", 20);
        assert!(got.starts_with("HTTP/1.1 401"), "{got:?}");
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_level_ingest_would_refuse_is_refused_before_publishing() {
    let w = Web::start(|_| {}).await;
    let port = w.port;
    blocking(move || {
        let now = chrono::Utc::now().timestamp_millis();
        for ts in [5, now + 3_600_000, 4_102_444_800_000] {
            let body = format!(r#"{{"level":"red","ts":{ts}}}"#);
            let r = request(port, "PUT", "/api/city/level", Some(TOKEN), &body);
            assert_eq!(r.status, 400, "ts {ts}: {}", r.body);
            assert!(r.body.contains("ts"), "{}", r.body);
        }
        let body = format!(r#"{{"level":"red","ts":{now}}}"#);
        let r = request(port, "PUT", "/api/city/level", Some(TOKEN), &body);
        assert_eq!(r.status, 200, "{}", r.body);
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_and_idle_connections_are_closed() {
    let w = Web::start(|c| {
        c.http.header_timeout_s = 1;
        c.http.idle_timeout_s = 2;
    })
    .await;
    let port = w.port;
    let metrics = w.agg.metrics.clone();
    blocking(move || {
        // Slowloris: headers started, never finished; a byte now and then does not help.
        let mut slow = raw(port);
        send(&mut slow, b"GET / HTTP/1.1\r\nHost: x\r\n");
        let mut closed = false;
        for _ in 0..20 {
            if slow.write_all_ok(b"X-A: b\r\n") && !closed_within(&mut slow, 1) {
                continue;
            }
            closed = true;
            break;
        }
        assert!(closed, "a connection sending partial headers is closed");
        // Idle between requests: one request answered, then silence.
        let mut idle = raw(port);
        send(&mut idle, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let (got, _) = read_until(&mut idle, "ok\n", 10);
        assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
        assert!(closed_within(&mut idle, 20), "an idle connection is closed");
        // Idle inside a request: a body announced, a few bytes sent, then silence.
        let mut stalled = raw(port);
        send(
            &mut stalled,
            format!(
                "PUT /api/city/level HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"level\""
            )
            .as_bytes(),
        );
        assert!(closed_within(&mut stalled, 20), "a stalled body is closed");
        // The server still answers.
        assert_eq!(request(port, "GET", "/healthz", None, "").status, 200);
    })
    .await;
    assert!(
        metrics
            .http
            .idle_closed
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    w.stop().await;
}

/// `write_all` that reports failure instead of panicking (the server may have closed).
trait WriteOk {
    fn write_all_ok(&mut self, bytes: &[u8]) -> bool;
}

impl WriteOk for std::net::TcpStream {
    fn write_all_ok(&mut self, bytes: &[u8]) -> bool {
        std::io::Write::write_all(self, bytes).is_ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_slots_free_up() {
    let w = Web::start(|c| c.http.max_connections = 4).await;
    let port = w.port;
    let metrics = w.agg.metrics.clone();
    blocking(move || {
        let mut held: Vec<_> = (0..4)
            .map(|_| {
                let mut s = raw(port);
                send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                let (got, _) = read_until(&mut s, "ok\n", 10);
                assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
                s
            })
            .collect();
        let mut extra = raw(port);
        let _ = extra.write_all_ok(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let (got, closed) = read_until(&mut extra, "ok\n", 10);
        assert!(
            closed && got.is_empty(),
            "the fifth connection is closed: {got:?}"
        );
        drop(held.pop());
        eventually(20, "a slot freed", || {
            (metrics
                .http
                .connections_open
                .load(std::sync::atomic::Ordering::Relaxed)
                == 3)
                .then_some(())
        });
        assert_eq!(request(port, "GET", "/healthz", None, "").status, 200);
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_share_one_computation_and_are_limited() {
    let w = Web::start(|c| c.http.max_streams = 3).await;
    let port = w.port;
    let metrics = w.agg.metrics.clone();
    let mut open = blocking(move || {
        let open_stream = || {
            let mut s = raw(port);
            send(&mut s, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
            s
        };
        let mut streams: Vec<_> = (0..3).map(|_| open_stream()).collect();
        for s in &mut streams {
            // Every stream gets the current state (the level at least).
            let (got, _) = read_until(s, "event: level", 20);
            assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
            assert!(got.contains("event: level"), "{got:?}");
        }
        let mut fourth = open_stream();
        let (got, _) = read_until(&mut fourth, "\r\n\r\n", 10);
        assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
        let (_, text) = support::http_get(port, "/metrics");
        assert_eq!(metric(&text, "dustwatch_live_streams"), Some(3.0));
        assert_eq!(
            metric(&text, "dustwatch_live_streams_refused_total"),
            Some(1.0)
        );

        // Three streams open: at most one computation per tick, not one per stream.
        let updates = || {
            metrics
                .http
                .live_updates
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let (t0, u0) = (Instant::now(), updates());
        std::thread::sleep(Duration::from_secs(2));
        let (ticks, done) = (t0.elapsed().as_millis() / 500, updates() - u0);
        assert!(done >= 1, "the hub computes while streams are open");
        assert!(
            u128::from(done) <= ticks + 1,
            "{done} computations in {ticks} ticks for 3 streams"
        );

        // All closed: the hub stops reading the store.
        drop(streams);
        drop(fourth);
        eventually(20, "streams closed", || {
            (metrics
                .http
                .live_streams
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0)
                .then_some(())
        });
        std::thread::sleep(Duration::from_millis(600));
        let idle_from = updates();
        std::thread::sleep(Duration::from_millis(1_500));
        assert_eq!(updates(), idle_from, "no computation without streams");
        // A slot is free again.
        let mut again = open_stream();
        let (got, _) = read_until(&mut again, "\r\n\r\n", 10);
        assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
        again
    })
    .await;
    // Shutdown ends open streams: the server stops instead of waiting on them.
    tokio::time::timeout(Duration::from_secs(30), w.stop())
        .await
        .expect("the server stops with a live stream open");
    assert!(blocking(move || closed_within(&mut open, 10)).await);
}
