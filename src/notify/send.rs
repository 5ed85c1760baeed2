//! Transports: an HTTP POST to a webhook, an email over SMTP. Both are blocking (they run on
//! the notifier's own thread) with timeouts, and say whether a failure is worth retrying.

use super::config::{SmtpConfig, SmtpSecurity, WebhookConfig, WebhookFormat};
use super::format::{dingtalk_url, Message};
use super::NotifyError;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The receiver is away or busy: try again later.
    Retry(String),
    /// The receiver refused this message and would refuse it again.
    Refused(String),
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Webhook sender of one target: an HTTP agent (connection reuse, TLS through rustls with
/// Mozilla's roots, and the target's own CA when it names one).
pub struct WebhookSender {
    agent: ureq::Agent,
}

impl WebhookSender {
    pub fn new(target: &WebhookConfig) -> Result<WebhookSender, NotifyError> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .user_agent(concat!("dustwatch/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &target.ca_file {
            builder = builder.tls_config(std::sync::Arc::new(tls_with_ca(&target.name, ca)?));
        }
        Ok(WebhookSender {
            agent: builder.build(),
        })
    }

    pub fn send(&self, target: &WebhookConfig, m: &Message<'_>, now_ms: i64) -> Outcome {
        let (url, body) = match target.format {
            WebhookFormat::Generic => (target.url.clone(), m.generic()),
            WebhookFormat::Dingtalk => (
                match &target.secret {
                    Some(s) => dingtalk_url(&target.url, s, now_ms),
                    None => target.url.clone(),
                },
                m.dingtalk(),
            ),
            WebhookFormat::Wecom => (target.url.clone(), m.wecom()),
        };
        let result = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json; charset=utf-8")
            // Receivers that may see a message twice (a crash between their answer and our
            // commit) can drop the repeat by this key.
            .set("Idempotency-Key", &format!("dustwatch-{}", m.row.id))
            .send_string(&body.to_string());
        match result {
            Ok(response) => {
                if target.format == WebhookFormat::Generic {
                    return Outcome::Delivered;
                }
                // The robots answer 200 with `errcode` ≠ 0 when they refuse. Busy and rate
                // limits (-1; DingTalk 130101; WeCom 45009) pass: retried. Anything else (bad
                // signature, keyword missing, bad key) would be refused again: kept, not retried.
                let text = response.into_string().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let why = || {
                    format!(
                        "robot answered {}",
                        text.chars().take(300).collect::<String>()
                    )
                };
                match v["errcode"].as_i64() {
                    Some(0) => Outcome::Delivered,
                    Some(-1 | 130101 | 45009) | None => Outcome::Retry(why()),
                    Some(_) => Outcome::Refused(why()),
                }
            }
            Err(ureq::Error::Status(code, response)) => {
                let text = response.into_string().unwrap_or_default();
                let why = format!(
                    "HTTP {code}: {}",
                    text.chars().take(300).collect::<String>()
                );
                // 4xx other than timeout / too many requests: this body will never pass.
                if (400..500).contains(&code) && code != 408 && code != 429 {
                    Outcome::Refused(why)
                } else {
                    Outcome::Retry(why)
                }
            }
            // Not the error's Display: it names the URL, and robot URLs carry their key.
            Err(ureq::Error::Transport(t)) => Outcome::Retry(match t.message() {
                Some(m) => format!("{}: {m}", t.kind()),
                None => t.kind().to_string(),
            }),
        }
    }
}

/// Mozilla's roots and the CAs in `ca` (PEM).
fn tls_with_ca(name: &str, ca: &std::path::Path) -> Result<rustls::ClientConfig, NotifyError> {
    let bad =
        |e: String| NotifyError::Config(format!("webhook `{name}`: ca_file {}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let file = std::fs::File::open(ca).map_err(|e| bad(e.to_string()))?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(file)) {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad("no certificate in it".into()));
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))
    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// Email sender: one SMTP transport.
pub struct SmtpSender {
    transport: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
}

impl SmtpSender {
    pub fn new(c: &SmtpConfig) -> Result<SmtpSender, NotifyError> {
        use lettre::transport::smtp::authentication::Credentials;
        let bad = |what: &str, e: String| NotifyError::Config(format!("[notify.smtp] {what}: {e}"));
        let mut builder = match c.security {
            SmtpSecurity::Tls => {
                lettre::SmtpTransport::relay(&c.host).map_err(|e| bad("host", e.to_string()))?
            }
            SmtpSecurity::Starttls => lettre::SmtpTransport::starttls_relay(&c.host)
                .map_err(|e| bad("host", e.to_string()))?,
            SmtpSecurity::None => lettre::SmtpTransport::builder_dangerous(&c.host),
        };
        let port = c.port.unwrap_or(match c.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        });
        builder = builder.port(port).timeout(Some(TIMEOUT));
        if let Some(ca) = &c.ca_file {
            use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
            let pem = std::fs::read(ca).map_err(|e| bad("ca_file", e.to_string()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| bad("ca_file", e.to_string()))?;
            let params = TlsParameters::builder(c.host.clone())
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|e| bad("ca_file", e.to_string()))?;
            builder = builder.tls(match c.security {
                SmtpSecurity::Tls => Tls::Wrapper(params),
                SmtpSecurity::Starttls => Tls::Required(params),
                SmtpSecurity::None => Tls::None,
            });
        }
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let from = c
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| bad("from", e.to_string()))?;
        let to =
            c.to.iter()
                .map(|t| {
                    t.parse()
                        .map_err(|e: lettre::address::AddressError| bad("to", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            to,
        })
    }

    pub fn send(&self, m: &Message<'_>) -> Outcome {
        use lettre::Transport;
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(m.title())
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let email = match b.body(m.text()) {
            Ok(e) => e,
            Err(e) => return Outcome::Refused(format!("cannot build the email: {e}")),
        };
        match self.transport.send(&email) {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.is_permanent() => Outcome::Refused(e.to_string()),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}
