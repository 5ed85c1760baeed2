//! HTTP checks over real sockets: an in-process aggregator with one registered site, requests
//! with any method, headers and body, and raw connections for clients that misbehave.

use super::embedded_broker;
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::SiteInfo;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "http-test-token-0123456789";

/// An aggregator serving HTTP on a free port, write token [`TOKEN`], site `s1` registered.
pub struct Web {
    pub agg: Aggregator,
    pub port: u16,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
    _broker: dustwatch_broker::EmbeddedBroker,
}

impl Web {
    pub async fn start(tune: impl FnOnce(&mut Config)) -> Web {
        let site = SiteInfo {
            id: "s1".into(),
            name: "Site 1".into(),
            street: "Town".into(),
            kind: Default::default(),
            phase: Default::default(),
            lat: None,
            lon: None,
            reference: None,
        };
        Web::start_with(tune, vec![site]).await
    }

    /// As [`Web::start`], with these sites registered instead.
    pub async fn start_with(tune: impl FnOnce(&mut Config), sites: Vec<SiteInfo>) -> Web {
        let broker = embedded_broker();
        let data = tempfile::tempdir().expect("temp dir");
        let mut c = Config::default();
        let port = broker.addr().port();
        c.mqtt.url = format!("mqtt://127.0.0.1:{port}");
        c.mqtt.client_id = format!("http-test-{port}");
        c.http.listen = "127.0.0.1:0".parse().expect("literal");
        c.http.write_token = Some(TOKEN.into());
        c.store.data_dir = data.path().to_path_buf();
        tune(&mut c);
        let shutdown = CancellationToken::new();
        let agg = Aggregator::start(&c, sites, shutdown.clone())
            .await
            .expect("aggregator starts");
        let port = agg.http_addr.port();
        Web {
            agg,
            port,
            shutdown,
            _data: data,
            _broker: broker,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.agg.wait().await.expect("clean stop");
    }

    /// The embedded broker's port.
    pub fn broker_port(&self) -> u16 {
        self._broker.addr().port()
    }
}

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Any request; `token` as `Authorization: Bearer`.
pub fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut r = ureq::request(method, &format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .set("Content-Type", "application/json");
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    let result = if body.is_empty() {
        r.call()
    } else {
        r.send_string(body)
    };
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let headers = headers_of(&resp);
    Reply {
        status,
        headers,
        body: resp.into_string().unwrap_or_default(),
    }
}

/// A GET with extra request headers; the body exactly as sent (a byte-order mark kept).
pub fn get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut r =
        ureq::get(&format!("http://127.0.0.1:{port}{path}")).timeout(Duration::from_secs(10));
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let resp = match r.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = resp.status();
    let headers = headers_of(&resp);
    let mut bytes = Vec::new();
    let _ = resp.into_reader().take(16 << 20).read_to_end(&mut bytes);
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A raw connection with a read timeout (the guard against a hang, not an assertion).
pub fn raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    s
}

/// Read until `needle` shows up, the server closes (returns what came), or `secs` pass.
pub fn read_until(s: &mut TcpStream, needle: &str, secs: u64) -> (String, bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains(needle) {
                    return (String::from_utf8_lossy(&got).into_owned(), false);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// True once the server closed `s` within `secs` (EOF or reset).
pub fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    read_until(s, "\u{0}never\u{0}", secs).1
}

/// Send raw bytes.
pub fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).expect("send");
}

/// The real `dustwatch serve` on a free HTTP port, with its start-up text (stdout up to
/// "Press Ctrl-C") kept; killed on drop.
pub struct ServeProcess {
    child: std::process::Child,
    pub stdout: String,
    pub port: u16,
    _broker: dustwatch_broker::EmbeddedBroker,
}

impl ServeProcess {
    /// `dustwatch serve [args]` with extra environment variables; `dir` holds the store.
    pub fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        use std::io::BufRead;
        let broker = embedded_broker();
        let port = super::free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"));
        cmd.arg("serve")
            .args(args)
            .arg("--broker")
            .arg(format!("mqtt://127.0.0.1:{}", broker.addr().port()))
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(dir.join("data"))
            .env_remove("DUSTWATCH_WRITE_TOKEN")
            .env_remove("DUSTWATCH_WRITE_TOKEN_FILE")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn dustwatch serve");
        let out = child.stdout.take().expect("piped stdout");
        let mut stdout = String::new();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.expect("stdout line");
            stdout.push_str(&line);
            stdout.push('\n');
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        ServeProcess {
            child,
            stdout,
            port,
            _broker: broker,
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every header of a response, as (name, value).
fn headers_of(resp: &ureq::Response) -> Vec<(String, String)> {
    resp.headers_names()
        .into_iter()
        .filter_map(|n| Some((n.clone(), resp.header(&n)?.to_owned())))
        .collect()
}
