//! Notifications end to end with real parts: alert changes written by the alert writer into a
//! real SQLite store, the notifier delivering them over HTTP to a webhook receiver (generic,
//! DingTalk with its signature checked, WeCom) and over SMTP to a sink, across an outage.

mod support;

use dustwatch::metrics::Metrics;
use dustwatch::notify::{self, NotifyConfig};
use dustwatch::store::{
    Alert, AlertStore, AlertWriter, SqliteStore, StoreConfig, StoreReader, StoreWriter,
};
use dustwatch_protocol::{AlertState, Change, EventTime, Level, RuleKind, Severity, SiteInfo};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use support::sinks::{SmtpSink, WebhookReceiver};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "SECtest-secret";

fn alert(id: i64, state: AlertState, severity: Severity) -> Alert {
    Alert {
        id,
        site: "s1".into(),
        rule: "night_work".into(),
        kind: RuleKind::Night,
        severity,
        state,
        acknowledged: false,
        ack_by: None,
        ack_comment: None,
        opened_ts: EventTime(1_767_225_600_000),
        updated_ts: EventTime(1_767_225_600_000),
        cleared_ts: None,
        closed_ts: None,
        offences: 1,
        level: Level::None,
        evidence: serde_json::json!({}),
    }
}

struct Setup {
    _data: tempfile::TempDir,
    alerts: AlertStore,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    notifier: notify::Notifier,
}

impl Setup {
    /// Open one alert of `severity` (id `id`).
    fn open(&mut self, id: i64, severity: Severity) {
        self.alerts
            .apply(&[(Change::Opened, alert(id, AlertState::Active, severity))])
            .expect("opened");
    }

    /// Stop the notifier and wait for its thread to end cleanly.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::task::spawn_blocking(move || self.notifier.thread.join())
            .await
            .expect("join")
            .expect("notifier ends cleanly");
    }
}

/// A store with site `s1` on 金水街道, and a notifier with `config`.
fn setup(config: &NotifyConfig) -> Setup {
    let data = tempfile::tempdir().expect("temp dir");
    let store_config = StoreConfig {
        data_dir: data.path().to_path_buf(),
        ..Default::default()
    };
    let mut store = SqliteStore::open(store_config.clone(), false).expect("store opens");
    let site = SiteInfo::new("s1", "Site One", "金水街道");
    store.upsert_sites(&[site]).expect("site registered");
    let reader: Arc<dyn StoreReader> = Arc::new(store.reader().expect("reader"));
    let alerts = AlertStore::open(data.path()).expect("alert store");
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let notifier = notify::start(
        config,
        &store_config,
        reader,
        chrono_tz::Asia::Shanghai,
        metrics.clone(),
        shutdown.clone(),
    )
    .expect("notifier starts")
    .expect("targets are configured");
    Setup {
        _data: data,
        alerts,
        metrics,
        shutdown,
        notifier,
    }
}

fn config(receiver: u16, smtp: u16) -> NotifyConfig {
    toml::from_str(&format!(
        r#"
        retry_max_s = 1
        [[webhook]]
        name = "generic"
        url = "http://127.0.0.1:{receiver}/generic"
        [[webhook]]
        name = "ding"
        format = "dingtalk"
        url = "http://127.0.0.1:{receiver}/dingtalk?access_token=t0k"
        secret = "{SECRET}"
        [[webhook]]
        name = "wecom"
        format = "wecom"
        url = "http://127.0.0.1:{receiver}/wecom"
        streets = ["金水街道"]
        [[webhook]]
        name = "other-street"
        url = "http://127.0.0.1:{receiver}/generic-other"
        streets = ["别的街道"]
        [smtp]
        host = "127.0.0.1"
        port = {smtp}
        security = "none"
        from = "dustwatch <dustwatch@example.org>"
        to = ["office@example.org"]
        language = "en"
        "#
    ))
    .expect("notify config parses")
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn changes(hooks: &[support::sinks::Hook]) -> Vec<(i64, String)> {
    hooks
        .iter()
        .map(|h| {
            (
                h.body["alert"]["id"].as_i64().unwrap_or(-1),
                h.body["change"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_change_arrives_once_per_target_in_order_across_an_outage() {
    let mut receiver = WebhookReceiver::start(SECRET).await;
    let mut sink = SmtpSink::start().await;
    let mut s = setup(&config(receiver.port, sink.port));

    // Opened, acknowledged, then escalated (an evidence update that raised the severity).
    let mut a = alert(1, AlertState::Active, Severity::Violation);
    s.alerts
        .apply(&[(Change::Opened, a.clone())])
        .expect("opened");
    a.acknowledged = true;
    a.ack_by = Some("王工".into());
    s.alerts
        .apply(&[(Change::Acknowledged, a.clone())])
        .expect("acknowledged");
    a.severity = Severity::Critical;
    s.alerts
        .apply(&[(Change::Updated, a.clone())])
        .expect("escalated");
    // A plain evidence update is not a change anyone is told about.
    s.alerts
        .apply(&[(Change::Updated, a.clone())])
        .expect("updated");

    wait("three messages at every target", || {
        receiver.got("/generic").len() >= 3
            && receiver.got("/dingtalk").len() >= 3
            && receiver.got("/wecom").len() >= 3
            && sink.mails().len() >= 3
    })
    .await;

    // The receiver goes away; the alert closes and a second one opens meanwhile.
    receiver.stop().await;
    sink.stop().await;
    a.state = AlertState::Closed;
    a.closed_ts = Some(a.opened_ts + 3_600_000);
    s.alerts
        .apply(&[(Change::Closed, a.clone())])
        .expect("closed");
    let b = alert(2, AlertState::Active, Severity::Warning);
    s.alerts.apply(&[(Change::Opened, b)]).expect("opened 2");
    let m = s.metrics.clone();
    wait("failed attempts while the receivers are away", || {
        m.acting.notify_failures.load(Relaxed) >= 2
    })
    .await;
    receiver.restart().await;
    sink.restart().await;
    wait("five messages at every target", || {
        receiver.got("/generic").len() >= 5
            && receiver.got("/dingtalk").len() >= 5
            && receiver.got("/wecom").len() >= 5
            && sink.mails().len() >= 5
    })
    .await;
    wait("nothing left to deliver", || {
        m.acting.notify_backlog.load(Relaxed) == 0
    })
    .await;

    let expected: Vec<(i64, String)> = vec![
        (1, "opened".into()),
        (1, "acknowledged".into()),
        (1, "escalated".into()),
        (1, "closed".into()),
        (2, "opened".into()),
    ];
    assert_eq!(
        changes(&receiver.got("/generic")),
        expected,
        "generic JSON, in order, once each"
    );
    // Each message names its delivery; none came twice.
    let mut ids: Vec<i64> = receiver
        .got("/generic")
        .iter()
        .filter_map(|h| h.body["delivery"].as_i64())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(
        receiver.got("/generic-other").is_empty(),
        "routed by street"
    );

    let ding = receiver.got("/dingtalk");
    assert_eq!(ding.len(), 5);
    assert_eq!(
        receiver.bad_signatures(),
        0,
        "every DingTalk message was signed"
    );
    assert_eq!(ding[0].body["msgtype"], "markdown");
    let title = ding[0].body["markdown"]["title"].as_str().unwrap_or("");
    assert!(
        title.contains("新告警") && title.contains("Site One"),
        "{title}"
    );
    assert!(ding[1].body["markdown"]["text"]
        .as_str()
        .unwrap_or("")
        .contains("王工"));

    let wecom = receiver.got("/wecom");
    assert_eq!(wecom.len(), 5);
    assert_eq!(wecom[0].body["msgtype"], "markdown");
    assert!(wecom[3].body["markdown"]["content"]
        .as_str()
        .unwrap_or("")
        .contains("告警已关闭"));

    let mails = sink.mails();
    assert_eq!(mails.len(), 5, "one email per change");
    let order = [
        "Alert opened",
        "Alert acknowledged",
        "Alert escalated",
        "Alert closed",
        "Alert opened",
    ];
    for (mail, what) in mails.iter().zip(order) {
        assert!(mail.contains(what), "expected `{what}` in\n{mail}");
        assert!(mail.contains("To: office@example.org"), "{mail}");
    }
    assert_eq!(s.metrics.acting.notify_delivered.load(Relaxed), 20);

    s.stop().await;
    receiver.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_all_but_critical_messages() {
    let mut receiver = WebhookReceiver::start(SECRET).await;
    // Quiet all day but one minute: whenever the test runs, a warning is held.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let from = (now - chrono::Duration::minutes(1)).format("%H:%M");
    let to = (now - chrono::Duration::minutes(2)).format("%H:%M");
    let config: NotifyConfig = toml::from_str(&format!(
        r#"
        quiet_hours = "{from}-{to}"
        [[webhook]]
        name = "generic"
        url = "http://127.0.0.1:{}/generic"
        "#,
        receiver.port
    ))
    .expect("config parses");
    let mut s = setup(&config);
    s.open(1, Severity::Warning);
    s.open(2, Severity::Critical);
    let m = s.metrics.clone();
    wait("the critical message", || {
        !receiver.got("/generic").is_empty()
    })
    .await;
    wait("the warning routed and held", || {
        m.acting.notify_routed.load(Relaxed) == 2 && m.acting.notify_backlog.load(Relaxed) == 1
    })
    .await;
    assert_eq!(
        changes(&receiver.got("/generic")),
        vec![(2, "opened".to_string())]
    );
    s.stop().await;
    receiver.stop().await;
}

/// The running aggregator: readings in over a real broker open a rule's alert, the office
/// acknowledges it over HTTP, and the webhook receiver gets both changes, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_aggregator_notifies_a_rule_alert_and_its_acknowledgement() {
    use dustwatch_protocol::{Phase, Reading, SiteKind, TopicRoot};
    let receiver = WebhookReceiver::start(SECRET).await;
    let site = |id: &str, kind: SiteKind| SiteInfo {
        kind,
        phase: Phase::Earthwork,
        reference: Some("ref".into()),
        ..SiteInfo::new(id, format!("Site {id}"), "Liuzhai")
    };
    let receiver_port = receiver.port;
    let web = support::http::Web::start_with(
        |c| {
            c.notify = toml::from_str(&format!(
                "retry_max_s = 1\n[[webhook]]\nname = \"generic\"\n\
                 url = \"http://127.0.0.1:{receiver_port}/generic\"\nstreets = [\"Liuzhai\"]\n"
            ))
            .expect("notify config");
        },
        vec![
            site("s1", SiteKind::Construction),
            site("ref", SiteKind::Reference),
        ],
    )
    .await;
    support::wait_subscribed(&web.agg).await;

    // Two hours: the first clean, the second at +200 over the reference, then ten minutes more.
    let root = TopicRoot::default();
    let t0 = 1_483_574_400_000i64;
    let mut msgs = Vec::new();
    for i in 0..130i64 {
        let ts = t0 + (i + 1) * 60_000;
        let pm10 = if (60..120).contains(&i) { 300.0 } else { 110.0 };
        for (s, v) in [("s1", pm10), ("ref", 100.0)] {
            let r = Reading {
                ts,
                seq: i as u64,
                boot: 1,
                interval_s: 60,
                pm10: Some(v),
                ..Default::default()
            };
            msgs.push((root.reading(s, "d1"), r.encode()));
        }
    }
    support::publish_all(web.broker_port(), "notify-fleet", msgs).await;
    wait("the opened alert's message", || {
        changes(&receiver.got("/generic"))
            .iter()
            .any(|(_, c)| c == "opened")
    })
    .await;
    let opened = receiver.got("/generic");
    let hook = opened
        .iter()
        .find(|h| h.body["change"] == "opened")
        .expect("opened");
    assert_eq!(hook.body["site"]["street"], "Liuzhai");
    let id = hook.body["alert"]["id"].as_i64().expect("alert id");

    let port = web.port;
    let ack = tokio::task::spawn_blocking(move || {
        support::http::request(
            port,
            "POST",
            &format!("/api/alerts/{id}/ack"),
            Some(support::http::TOKEN),
            r#"{"by":"王工","comment":"已派人"}"#,
        )
    })
    .await
    .expect("ack");
    assert_eq!(ack.status, 200, "{}", ack.body);
    wait("the acknowledgement's message", || {
        changes(&receiver.got("/generic")).contains(&(id, "acknowledged".to_string()))
    })
    .await;
    // Exactly the changes the store recorded, once each and in order, for every alert.
    let got = changes(&receiver.got("/generic"));
    let alerts = support::http::request(port, "GET", "/api/alerts?state=all", None, "");
    let alerts: serde_json::Value = serde_json::from_str(&alerts.body).expect("alerts JSON");
    let ids: Vec<i64> = alerts
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert!(ids.len() >= 2, "{alerts}");
    for alert in ids {
        let one = support::http::request(port, "GET", &format!("/api/alerts/{alert}"), None, "");
        let one: serde_json::Value = serde_json::from_str(&one.body).expect("alert JSON");
        let recorded: Vec<String> = one["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|h| h["change"].as_str().map(str::to_string))
            .collect();
        let notified: Vec<String> = got
            .iter()
            .filter(|(a, c)| *a == alert && c != "escalated")
            .map(|(_, c)| c.clone())
            .collect();
        assert_eq!(notified, recorded, "alert {alert}: {got:?}");
    }
    assert_eq!(got.first(), Some(&(id, "opened".to_string())));
    assert_eq!(got.last(), Some(&(id, "acknowledged".to_string())));
    let metrics = support::http::request(port, "GET", "/metrics", None, "").body;
    assert!(
        support::metric(&metrics, "dustwatch_notify_delivered_total").is_some_and(|n| n >= 2.0)
    );
    web.stop().await;
}

/// A receiver on HTTPS with the office's own CA: trusted through `ca_file`; without it (Mozilla's
/// roots only) the handshake fails and nothing is sent in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_over_https_trust_the_configured_ca_only() {
    let pki = dustwatch_testkit::TestPki::generate();
    let receiver = WebhookReceiver::start_https(SECRET, &pki).await;
    let config: NotifyConfig = toml::from_str(&format!(
        r#"
        retry_max_s = 1
        [[webhook]]
        name = "own-ca"
        url = "https://127.0.0.1:{port}/generic"
        ca_file = "{ca}"
        [[webhook]]
        name = "public-roots"
        url = "https://127.0.0.1:{port}/wecom"
        "#,
        port = receiver.port,
        ca = pki.ca.display()
    ))
    .expect("config parses");
    let mut s = setup(&config);
    s.open(1, Severity::Violation);
    wait("the message over HTTPS", || {
        !receiver.got("/generic").is_empty()
    })
    .await;
    let m = s.metrics.clone();
    wait("the untrusted receiver's failures", || {
        m.acting.notify_failures.load(Relaxed) >= 2
    })
    .await;
    assert_eq!(
        changes(&receiver.got("/generic")),
        vec![(1, "opened".to_string())]
    );
    assert!(
        receiver.got("/wecom").is_empty(),
        "an untrusted certificate gets nothing"
    );
    s.stop().await;
}

/// Email over STARTTLS to a server with the office's own CA: the sink takes no mail in the
/// clear, and the message arrives once the session is encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_over_starttls_to_a_server_of_the_configured_ca() {
    let pki = dustwatch_testkit::TestPki::generate();
    let sink = SmtpSink::start_starttls(&pki).await;
    let config: NotifyConfig = toml::from_str(&format!(
        r#"
        retry_max_s = 1
        [smtp]
        host = "127.0.0.1"
        port = {port}
        security = "starttls"
        ca_file = "{ca}"
        from = "dustwatch@example.org"
        to = ["office@example.org"]
        language = "en"
        "#,
        port = sink.port,
        ca = pki.ca.display()
    ))
    .expect("config parses");
    let mut s = setup(&config);
    s.open(1, Severity::Violation);
    wait("the email", || !sink.mails().is_empty()).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Alert opened"), "{}", mails[0]);
    s.stop().await;
}
