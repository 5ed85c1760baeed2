//! Two aggregator instances on one PostgreSQL database, each with its own broker and data
//! directory: what the office does on one is there on the other (users, sessions, tokens,
//! orders), and with both notifiers running every alert change reaches the webhook receiver
//! exactly once. Runs when `DUSTWATCH_REQUIRE_POSTGRES` is set.

mod support;

use std::collections::BTreeMap;
use support::acting::*;
use support::sinks::WebhookReceiver;
use support::{eventually, publish_all};

/// Synthetic alert changes added straight to the shared outbox, so both notifiers have many
/// rows to race for.
const EXTRA_CHANGES: i64 = 40;

fn query_i64(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query_one(sql, &[]).expect("query").get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_users_orders_and_deliver_each_notification_once() {
    let Some(pg) = dustwatch_testkit::Postgres::start() else {
        return;
    };
    let url = pg.database();
    let receiver = WebhookReceiver::start("").await;
    let hook = receiver.port;
    let start = |url: String| async move {
        Office::start_with(tempfile::tempdir().expect("temp dir"), move |c| {
            on_postgres(c, &url);
            c.notify = toml::from_str(&format!(
                "retry_max_s = 1\n[[webhook]]\nname = \"generic\"\n\
                 url = \"http://127.0.0.1:{hook}/generic\"\n"
            ))
            .expect("notify config");
        })
        .await
    };
    let a = start(url.clone()).await;
    let b = start(url.clone()).await;
    let (pa, pb) = (a.port, b.port);

    // Users added through A log in on B; a session opened on A is valid on B; a token issued
    // by A works on B.
    let (admin, inspector, viewer) = tokio::task::spawn_blocking(move || {
        let who = users(pa);
        assert!(
            login(pb, "li", "li-password").is_some(),
            "A's user logs in on B"
        );
        assert!(login(pb, "li", "wrong password").is_none());
        let (cookie, _) = login(pa, "wang", "wang-password").expect("login on A");
        let session = Auth::Session { cookie, csrf: None };
        let (s, page) = call(pb, "GET", "/patrol", &session, "");
        assert_eq!(s, 200, "A's session on B: {page}");
        let listed = ok(pb, "GET", "/api/users", &who.0, "");
        assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
        who
    })
    .await
    .expect("users");

    // Readings reach A only: A's rules open the alert (and enqueue its changes, once).
    publish_all(a.broker_port, "pg-acting-a", readings(0, 130)).await;
    let alert = tokio::task::spawn_blocking(move || {
        eventually(60, "s1's alert active, seen from B", || {
            let (_, body) = call(pb, "GET", "/api/alerts?site=s1&state=all", &Auth::None, "");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            v.as_array()?
                .iter()
                .find(|a| a["rule"] == "pm10-hourly" && a["state"] == "active")
                .cloned()
        })
    })
    .await
    .expect("alert");
    let id = alert["id"].as_i64().expect("alert id");

    // An order given on A shows on B; B refuses a second open order on the same alert.
    let (insp, view) = (inspector.clone(), viewer.clone());
    tokio::task::spawn_blocking(move || {
        let order = ok(
            pa,
            "POST",
            &format!("/api/alerts/{id}/orders"),
            &insp,
            &serde_json::json!({"kind": "stop_work", "ts": T0 + 125 * 60_000}).to_string(),
        );
        assert_eq!(order["issued_by"], "li");
        let on_b = ok(pb, "GET", &format!("/api/alerts/{id}/orders"), &view, "");
        assert_eq!(on_b[0]["id"], order["id"], "{on_b}");
        assert_eq!(on_b[0]["issued_by"], "li");
        let (s, body) = call(
            pb,
            "POST",
            &format!("/api/alerts/{id}/orders"),
            &insp,
            &serde_json::json!({"kind": "stop_work", "ts": T0 + 126 * 60_000}).to_string(),
        );
        assert_eq!(s, 400, "{body}");
    })
    .await
    .expect("orders");

    // Disabled on B: the viewer's token stops working on A at once.
    let view = viewer.clone();
    tokio::task::spawn_blocking(move || {
        let (s, _) = call(pa, "GET", "/api/users", &view, "");
        assert_eq!(s, 403, "a known viewer, below the role");
        ok(pb, "POST", "/api/users/wang/disable", &admin, "");
        let (s, _) = call(pa, "GET", "/api/users", &view, "");
        assert_eq!(s, 401, "a user disabled on B is nobody on A");
    })
    .await
    .expect("disable");

    // More changes in the shared outbox while both notifiers run.
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&u, postgres::NoTls).expect("connect");
        for i in 0..EXTRA_CHANGES {
            c.execute(
                "INSERT INTO notify_outbox (alert_id, change, site, rule, severity, alert, \
                 recorded_ms) SELECT $1, 'acknowledged', site, rule, severity, \
                 '{}', (extract(epoch from now()) * 1000)::int8 FROM alerts WHERE id = $2",
                &[&(1_000_000 + i), &id],
            )
            .expect("insert a change");
        }
    })
    .await
    .expect("extra changes");

    // Wait until every change is routed and none is pending; then nothing is sent again.
    let u = url.clone();
    let total = tokio::task::spawn_blocking(move || {
        eventually(90, "every notification delivered", || {
            let changes = query_i64(&u, "SELECT count(*) FROM notify_outbox");
            let delivered = query_i64(
                &u,
                "SELECT count(*) FROM notify_delivery WHERE state = 'delivered'",
            );
            let other = query_i64(
                &u,
                "SELECT count(*) FROM notify_delivery WHERE state != 'delivered'",
            );
            (changes > EXTRA_CHANGES && delivered == changes && other == 0).then_some(changes)
        })
    })
    .await
    .expect("delivered");
    let got = receiver.got("/generic");
    let mut per_delivery: BTreeMap<i64, u32> = BTreeMap::new();
    for h in &got {
        *per_delivery
            .entry(h.body["delivery"].as_i64().expect("delivery id"))
            .or_default() += 1;
    }
    let twice: Vec<_> = per_delivery.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(got.len() as i64, total, "one message per change");
    let sent_by = |o: &Office| {
        o.agg
            .metrics
            .acting
            .notify_delivered
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(
        (sent_by(&a) + sent_by(&b)) as i64,
        total,
        "the two notifiers' sends add up to one per change"
    );
    let opened = got
        .iter()
        .filter(|h| h.body["change"] == "opened" && h.body["alert"]["id"] == id)
        .count();
    assert_eq!(opened, 1, "the alert's opening is enqueued once, by A");

    // Neither instance keeps any of it in a SQLite file.
    for o in [&a, &b] {
        assert!(
            !o.data.path().join("dustwatch.db").exists(),
            "no SQLite file in {}",
            o.data.path().display()
        );
    }
    b.stop().await;
    a.stop().await;
}
