//! Acting on alerts over real HTTP: an aggregator with two earthwork sites and their reference
//! station, users created with the bootstrap token, and requests as each of them (no login, API
//! token, browser session with or without its CSRF token).

use super::embedded_broker;
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::{Phase, Reading, SiteInfo, SiteKind, TopicRoot};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const BOOTSTRAP: &str = "bootstrap-token-0123456789";
/// 2017-01-05 08:00 Asia/Shanghai.
pub const T0: i64 = 1_483_574_400_000;

pub fn site(id: &str, kind: SiteKind) -> SiteInfo {
    SiteInfo {
        id: id.into(),
        name: format!("工地 {id}"),
        street: "柳寨".into(),
        kind,
        phase: Phase::Earthwork,
        lat: None,
        lon: None,
        reference: (kind != SiteKind::Reference).then(|| "ref".into()),
    }
}

pub struct Office {
    pub agg: Aggregator,
    pub port: u16,
    pub broker_port: u16,
    shutdown: CancellationToken,
    pub data: tempfile::TempDir,
    _broker: dustwatch_broker::EmbeddedBroker,
}

impl Office {
    pub async fn start() -> Office {
        Office::start_in(tempfile::tempdir().expect("temp dir")).await
    }

    pub async fn start_in(data: tempfile::TempDir) -> Office {
        Office::start_with(data, |_| {}).await
    }

    /// On the PostgreSQL store at `url` (users, orders and all there too).
    pub async fn start_on_postgres(url: &str) -> Office {
        Office::start_with(tempfile::tempdir().expect("temp dir"), |c| {
            on_postgres(c, url)
        })
        .await
    }

    /// With the test's settings changed by `configure` last.
    pub async fn start_with(
        data: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
    ) -> Office {
        let broker = embedded_broker();
        let broker_port = broker.addr().port();
        let mut c = Config::default();
        c.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}");
        c.mqtt.client_id = format!("acting-test-{broker_port}");
        c.http.listen = "127.0.0.1:0".parse().expect("literal");
        c.http.write_token = Some(BOOTSTRAP.into());
        c.store.data_dir = data.path().to_path_buf();
        configure(&mut c);
        let shutdown = CancellationToken::new();
        let sites = vec![
            site("s1", SiteKind::Construction),
            site("s2", SiteKind::Construction),
            site("ref", SiteKind::Reference),
        ];
        let agg = Aggregator::start(&c, sites, shutdown.clone())
            .await
            .expect("aggregator starts");
        super::wait_subscribed(&agg).await;
        Office {
            port: agg.http_addr.port(),
            agg,
            broker_port,
            shutdown,
            data,
            _broker: broker,
        }
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.agg.wait().await.expect("clean stop");
        self.data
    }
}

/// Keep everything in the PostgreSQL database at `url`.
pub fn on_postgres(c: &mut Config, url: &str) {
    c.store.backend = dustwatch::store::config::Backend::Postgres;
    c.store.postgres.url = url.to_string();
}

/// Minutes `from..to` after T0 for s1, s2 and the reference: PM10 300 on the sites in minutes
/// 60..120 (an hourly increment of about 200 over the reference), clean otherwise.
pub fn readings(from: i64, to: i64) -> Vec<(String, Vec<u8>)> {
    readings_of(&["s1", "s2"], from, to)
}

/// [`readings`] for the given sites (device `d1` each) and the reference.
pub fn readings_of(sites: &[&str], from: i64, to: i64) -> Vec<(String, Vec<u8>)> {
    let root = TopicRoot::default();
    let mut msgs = Vec::new();
    for i in from..to {
        let ts = T0 + (i + 1) * 60_000;
        let pm10 = if (60..120).contains(&i) {
            300.0
        } else {
            110.0 + (i % 3) as f64
        };
        let reference = ("ref", 100.0 + (i % 2) as f64);
        let on_sites = sites.iter().map(|s| (*s, pm10));
        for (s, v) in on_sites.chain([reference]) {
            let r = Reading {
                ts,
                seq: i as u64,
                boot: 1,
                interval_s: 60,
                pm10: Some(v),
                pm25: Some(v / 2.0),
                noise_dba: Some(50.0 + (i % 4) as f64),
                ..Default::default()
            };
            msgs.push((root.reading(s, "d1"), r.encode()));
        }
    }
    msgs
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// A browser session: the cookie and the session's CSRF token (sent or not).
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build()
}

fn status_of(r: Result<ureq::Response, ureq::Error>) -> (u16, String, Vec<String>) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let cookies = resp
        .all("set-cookie")
        .iter()
        .map(|s| s.to_string())
        .collect();
    (
        resp.status(),
        resp.into_string().unwrap_or_default(),
        cookies,
    )
}

fn with_auth(mut r: ureq::Request, auth: &Auth) -> ureq::Request {
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => r = r.set("Authorization", &format!("Bearer {t}")),
        Auth::Session { cookie, csrf } => {
            r = r.set("Cookie", cookie);
            if let Some(c) = csrf {
                r = r.set("X-CSRF-Token", c);
            }
        }
    }
    r
}

/// The site's alerts as the API lists them (`filter` adds to the query, e.g. `&state=all`);
/// none while the API does not answer.
pub fn site_alerts(port: u16, site: &str, filter: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/alerts?site={site}{filter}");
    let (_, body) = call(port, "GET", &path, &Auth::None, "");
    match serde_json::from_str(&body) {
        Ok(serde_json::Value::Array(alerts)) => alerts,
        _ => Vec::new(),
    }
}

/// The site's first `pm10-hourly` alert as the API lists it (`filter` as [`site_alerts`]);
/// `None` while there is none or the API does not answer.
pub fn pm10_alert(port: u16, site: &str, filter: &str) -> Option<serde_json::Value> {
    site_alerts(port, site, filter)
        .into_iter()
        .find(|a| a["rule"] == "pm10-hourly")
}

/// A JSON call; (status, body).
pub fn call(port: u16, method: &str, path: &str, auth: &Auth, body: &str) -> (u16, String) {
    let r = agent()
        .request(method, &format!("http://127.0.0.1:{port}{path}"))
        .set("Content-Type", "application/json");
    let r = with_auth(r, auth);
    let (s, b, _) = status_of(if body.is_empty() {
        r.call()
    } else {
        r.send_string(body)
    });
    (s, b)
}

/// A JSON call that must succeed; the answer parsed.
pub fn ok(port: u16, method: &str, path: &str, auth: &Auth, body: &str) -> serde_json::Value {
    let (s, b) = call(port, method, path, auth, body);
    assert_eq!(s, 200, "{method} {path}: {b}");
    serde_json::from_str(&b).expect("json")
}

/// A form post as a page sends it; (status, body).
pub fn form(port: u16, path: &str, auth: &Auth, fields: &[(&str, &str)]) -> (u16, String) {
    let r = agent().post(&format!("http://127.0.0.1:{port}{path}"));
    let (s, b, _) = status_of(with_auth(r, auth).send_form(fields));
    (s, b)
}

/// Log in through the login form: the session cookie and the CSRF token (from its cookie).
pub fn login(port: u16, name: &str, password: &str) -> Option<(String, String)> {
    let r = agent().post(&format!("http://127.0.0.1:{port}/login"));
    let (status, _, cookies) =
        status_of(r.send_form(&[("name", name), ("password", password), ("next", "/patrol")]));
    if status != 303 {
        return None;
    }
    let value = |name: &str| {
        cookies.iter().find_map(|c| {
            c.split(';')
                .next()?
                .trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
    };
    let session = value("dw_session")?;
    let csrf = value("dw_csrf")?;
    let raw = cookies
        .iter()
        .find(|c| c.starts_with("dw_session="))
        .expect("session cookie");
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Strict"),
        "{raw}"
    );
    Some((format!("dw_session={session}"), csrf))
}

/// Users of every role, with API tokens: (admin, inspector, viewer).
pub fn users(port: u16) -> (Auth, Auth, Auth) {
    let boot = Auth::Bearer(BOOTSTRAP.into());
    let mut tokens = Vec::new();
    for (name, role) in [("office", "admin"), ("li", "inspector"), ("wang", "viewer")] {
        ok(
            port,
            "POST",
            "/api/users",
            &boot,
            &serde_json::json!({"name": name, "role": role, "password": format!("{name}-password")})
                .to_string(),
        );
        let t = ok(
            port,
            "POST",
            &format!("/api/users/{name}/tokens"),
            &boot,
            "",
        );
        tokens.push(Auth::Bearer(
            t["token"].as_str().expect("token").to_string(),
        ));
    }
    let viewer = tokens.pop().expect("3");
    let inspector = tokens.pop().expect("3");
    let admin = tokens.pop().expect("3");
    (admin, inspector, viewer)
}
