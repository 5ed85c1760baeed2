//! Receivers for notification tests, started on loopback: a webhook receiver (axum) that keeps
//! every request and checks DingTalk signatures, and an SMTP sink speaking just enough of the
//! protocol for a mail client to hand over a message. Both can be stopped and started again on
//! the same port (a receiver outage).

use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One request a webhook receiver accepted.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: String,
    pub body: serde_json::Value,
}

#[derive(Clone, Default)]
struct Shared {
    got: Arc<Mutex<Vec<Hook>>>,
    bad_signatures: Arc<Mutex<u32>>,
    secret: String,
}

/// A webhook receiver on a fixed port: `/generic`, `/wecom`, and `/dingtalk` (which checks
/// `timestamp` and `sign` against the secret as DingTalk's robot does).
pub struct WebhookReceiver {
    pub port: u16,
    shared: Shared,
    /// HTTPS with this server configuration; plain HTTP without.
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl WebhookReceiver {
    pub async fn start(secret: &str) -> WebhookReceiver {
        WebhookReceiver::start_with(secret, None).await
    }

    /// Over HTTPS with the test PKI's server certificate (for 127.0.0.1).
    pub async fn start_https(secret: &str, pki: &dustwatch_testkit::TestPki) -> WebhookReceiver {
        WebhookReceiver::start_with(secret, Some(acceptor(pki))).await
    }

    async fn start_with(secret: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut r = WebhookReceiver {
            port,
            shared: Shared {
                secret: secret.to_string(),
                ..Default::default()
            },
            tls,
            stop: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/generic", post(generic))
            .route("/wecom", post(wecom))
            .route("/dingtalk", post(dingtalk))
            .with_state(self.shared.clone());
        let token = CancellationToken::new();
        let t = token.clone();
        let task = match self.tls.clone() {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { t.cancelled().await })
                    .await;
            }),
            Some(acceptor) => tokio::spawn(async move {
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = t.cancelled() => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let (acceptor, app) = (acceptor.clone(), app.clone());
                            conns.spawn(async move {
                                // A client that does not trust us ends the handshake: fine.
                                let Ok(tls) = acceptor.accept(stream).await else { return };
                                let service = hyper_util::service::TowerToHyperService::new(app);
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                                    .await;
                            });
                        }
                    }
                }
                conns.abort_all();
            }),
        };
        self.stop = Some((token, task));
    }

    /// Stop listening and close every connection: the receiver is away.
    pub async fn stop(&mut self) {
        stop_serving(&mut self.stop).await;
    }

    /// Listen again on the same port.
    pub async fn restart(&mut self) {
        let listener = bind_again(self.port).await;
        self.serve(listener);
    }

    /// What arrived on `path`, in arrival order.
    pub fn got(&self, path: &str) -> Vec<Hook> {
        self.shared
            .got
            .lock()
            .expect("receiver lock")
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    pub fn bad_signatures(&self) -> u32 {
        *self.shared.bad_signatures.lock().expect("receiver lock")
    }
}

/// A TLS server side with the test PKI's certificate for 127.0.0.1.
fn acceptor(pki: &dustwatch_testkit::TestPki) -> tokio_rustls::TlsAcceptor {
    use std::io::BufReader;
    let open = |p: &std::path::Path| BufReader::new(std::fs::File::open(p).expect("PKI file"));
    let certs = rustls_pemfile::certs(&mut open(&pki.server_cert))
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = rustls_pemfile::private_key(&mut open(&pki.server_key))
        .expect("server key")
        .expect("a key in the file");
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server TLS configuration");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn generic(State(s): State<Shared>, Json(body): Json<serde_json::Value>) -> &'static str {
    s.got.lock().expect("lock").push(Hook {
        path: "/generic".into(),
        body,
    });
    "ok"
}

async fn wecom(
    State(s): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    s.got.lock().expect("lock").push(Hook {
        path: "/wecom".into(),
        body,
    });
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

async fn dingtalk(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    // The robot's check: HMAC-SHA256 of "timestamp\nsecret" keyed by the secret, base64 (the
    // query string's URL encoding is already undone here).
    let ts = q.get("timestamp").cloned().unwrap_or_default();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.secret.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, format!("{ts}\n{}", s.secret).as_bytes()).as_ref());
    if q.get("sign") != Some(&expected) || q.get("access_token").map(String::as_str) != Some("t0k")
    {
        *s.bad_signatures.lock().expect("lock") += 1;
        return Json(serde_json::json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    s.got.lock().expect("lock").push(Hook {
        path: "/dingtalk".into(),
        body,
    });
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

/// A minimal SMTP server: greets, says yes to EHLO/MAIL/RCPT, takes DATA up to the lone dot,
/// and keeps each message's text.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<String>>>,
    /// Offer STARTTLS with this server side, and take mail only once it is on.
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_with(None).await
    }

    /// A sink that requires STARTTLS (the test PKI's certificate) before it takes mail.
    pub async fn start_starttls(pki: &dustwatch_testkit::TestPki) -> SmtpSink {
        SmtpSink::start_with(Some(acceptor(pki))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut s = SmtpSink {
            port,
            mails: Default::default(),
            tls,
            stop: None,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: TcpListener) {
        let token = CancellationToken::new();
        let t = token.clone();
        let mails = self.mails.clone();
        let tls = self.tls.clone();
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = t.cancelled() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        sessions.spawn(session(stream, mails.clone(), tls.clone()));
                    }
                }
            }
            // Away means away: open sessions end with the listener.
            sessions.abort_all();
        });
        self.stop = Some((token, task));
    }

    pub async fn stop(&mut self) {
        stop_serving(&mut self.stop).await;
    }

    pub async fn restart(&mut self) {
        let listener = bind_again(self.port).await;
        self.serve(listener);
    }

    pub fn mails(&self) -> Vec<String> {
        self.mails.lock().expect("sink lock").clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<String>>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut stream = BufReader::new(stream);
    if stream
        .get_mut()
        .write_all(b"220 sink ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    if let Some(acceptor) = tls {
        // Plain until STARTTLS; no mail is taken in the clear.
        if !dialogue(&mut stream, &mails, Phase::BeforeTls).await {
            return;
        }
        let Ok(tls) = acceptor.accept(stream.into_inner()).await else {
            return;
        };
        dialogue(&mut BufReader::new(tls), &mails, Phase::Tls).await;
    } else {
        dialogue(&mut stream, &mails, Phase::Plain).await;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Plain,
    BeforeTls,
    Tls,
}

/// Answer commands until QUIT or the end; true when the client asked for STARTTLS.
async fn dialogue<S>(s: &mut BufReader<S>, mails: &Mutex<Vec<String>>, phase: Phase) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut line = String::new();
    loop {
        line.clear();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match (verb.as_str(), phase) {
            ("EHLO", Phase::BeforeTls) => b"250-sink\r\n250 STARTTLS\r\n",
            ("EHLO" | "HELO", _) => b"250 sink\r\n",
            ("STAR", Phase::BeforeTls) => {
                let _ = s.get_mut().write_all(b"220 go ahead\r\n").await;
                return true;
            }
            ("MAIL" | "RCPT" | "DATA", Phase::BeforeTls) => b"530 STARTTLS first\r\n",
            ("MAIL" | "RCPT" | "RSET" | "NOOP", _) => b"250 OK\r\n",
            ("DATA", _) => {
                if s.get_mut().write_all(b"354 go on\r\n").await.is_err() {
                    return false;
                }
                let mut text = String::new();
                let mut l = String::new();
                loop {
                    l.clear();
                    match s.read_line(&mut l).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                    if l.trim_end_matches(['\r', '\n']) == "." {
                        break;
                    }
                    text.push_str(l.trim_end_matches(['\r', '\n']));
                    text.push('\n');
                }
                mails.lock().expect("sink lock").push(text);
                b"250 queued\r\n"
            }
            ("QUIT", _) => {
                let _ = s.get_mut().write_all(b"221 bye\r\n").await;
                return false;
            }
            _ => b"502 not here\r\n",
        };
        if s.get_mut().write_all(answer).await.is_err() {
            return false;
        }
    }
}

/// Stop a sink's listening task and close its connections: the receiver is away.
async fn stop_serving(stop: &mut Option<(CancellationToken, tokio::task::JoinHandle<()>)>) {
    if let Some((token, task)) = stop.take() {
        token.cancel();
        let _ = task.await;
    }
}

/// Listen again on a stopped sink's port.
async fn bind_again(port: u16) -> TcpListener {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the sink's port is free again")
}
