//! Acting on alerts over real HTTP: every write route with each role (no login 401, viewer 403,
//! inspector and admin as designed, the user recorded), browser sessions with their CSRF token,
//! and an order holding an alert open in event time until a re-inspection passes.

mod support;

use support::acting::*;
use support::{eventually, publish_all};

fn alert_of(port: u16, site: &str) -> Option<serde_json::Value> {
    pm10_alert(port, site, "&state=all")
}

async fn wait_alert(port: u16, site: &'static str, state: &'static str) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        eventually(60, &format!("{site}'s alert {state}"), || {
            alert_of(port, site).filter(|a| a["state"] == state)
        })
    })
    .await
    .expect("wait")
}

/// Who may call: the lowest role allowed.
#[derive(Clone, Copy, PartialEq)]
enum Min {
    Inspector,
    Admin,
}

/// No login 401, viewer 403, inspector 403 below `min`; the allowed callers' answers (inspector
/// first when allowed, then admin), which must not be 401 or 403.
fn by_role(
    port: u16,
    (admin, inspector, viewer): &(Auth, Auth, Auth),
    method: &str,
    path: &str,
    body: &dyn Fn(&str) -> String,
    min: Min,
) -> Vec<(u16, serde_json::Value)> {
    let (s, b) = call(port, method, path, &Auth::None, &body("none"));
    assert_eq!(s, 401, "{method} {path} without login: {b}");
    let (s, b) = call(port, method, path, viewer, &body("viewer"));
    assert_eq!(s, 403, "{method} {path} as viewer: {b}");
    let mut allowed = Vec::new();
    let (s, b) = call(port, method, path, inspector, &body("inspector"));
    if min == Min::Admin {
        assert_eq!(s, 403, "{method} {path} as inspector: {b}");
    } else {
        // 200, or 202 for a command handed to the broker.
        assert!(
            s == 200 || s == 202,
            "{method} {path} as inspector: {s} {b}"
        );
        allowed.push((s, serde_json::from_str(&b).unwrap_or_default()));
    }
    let (s, b) = call(port, method, path, admin, &body("admin"));
    assert!(s != 401 && s != 403, "{method} {path} as admin: {s} {b}");
    allowed.push((s, serde_json::from_str(&b).unwrap_or_default()));
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_refuses_a_viewer_and_records_the_user() {
    every_write_route_by_role(Office::start().await).await;
}

/// The same matrix with users, sessions, orders, notices, patrol and commands in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_refuses_a_viewer_and_records_the_user_on_postgres() {
    let Some(pg) = dustwatch_testkit::Postgres::start() else {
        return;
    };
    every_write_route_by_role(Office::start_on_postgres(&pg.database()).await).await;
}

async fn every_write_route_by_role(office: Office) {
    let port = office.port;
    publish_all(office.broker_port, "fleet-roles", readings(0, 130)).await;
    let alert = wait_alert(port, "s1", "active").await;
    let id = alert["id"].as_i64().expect("id");

    tokio::task::spawn_blocking(move || {
        let who = users(port);
        let min = |m: &str| T0 + m.parse::<i64>().expect("minute") * 60_000;
        let json = |v: serde_json::Value| move |_: &str| v.to_string();

        // Acknowledge: an inspector's name is recorded, not a name in the body.
        let acks = by_role(
            port,
            &who,
            "POST",
            &format!("/api/alerts/{id}/ack"),
            &json(serde_json::json!({"by": "someone else", "comment": "seen"})),
            Min::Inspector,
        );
        assert_eq!(acks[0].1["ack_by"], "li");
        assert_eq!(acks[1].1["ack_by"], "office");

        // The city level: the office only.
        let set = by_role(
            port,
            &who,
            "PUT",
            "/api/city/level",
            &json(serde_json::json!({"level": "red", "ts": min("200")})),
            Min::Admin,
        );
        assert_eq!(set[0], (200, serde_json::json!({"level": "red", "ts": min("200")})));

        // Orders: the inspector's is issued; the admin's second one is refused as a duplicate
        // (the role passes).
        let orders = by_role(
            port,
            &who,
            "POST",
            &format!("/api/alerts/{id}/orders"),
            &json(serde_json::json!({"kind": "stop_work", "ts": min("125")})),
            Min::Inspector,
        );
        assert_eq!(orders[0].1["issued_by"], "li");
        assert_eq!(orders[1].0, 400, "{:?}", orders[1]);
        let order = orders[0].1["id"].as_i64().expect("order id");

        let responses = by_role(
            port,
            &who,
            "POST",
            &format!("/api/orders/{order}/response"),
            &json(serde_json::json!({"response": "work stopped, sprinklers on", "ts": min("126")})),
            Min::Inspector,
        );
        assert_eq!(responses[1].1["response_by"], "office");

        let checks = by_role(
            port,
            &who,
            "POST",
            &format!("/api/orders/{order}/reinspections"),
            &json(serde_json::json!({"result": "failed", "note": "dust on the road", "ts": min("150")})),
            Min::Inspector,
        );
        assert_eq!(checks[0].1["by"], "li");
        assert_eq!(checks[0].1["escalated_to"], "critical");
        assert_eq!(checks[1].1["by"], "office");

        // Commands to a device: inspectors and the office; the sender is who is logged in, not
        // a name in the body.
        let sent = by_role(
            port,
            &who,
            "POST",
            "/api/sites/s1/commands",
            &json(serde_json::json!({"device": "d1", "cmd": "sprinkle", "duration_s": 600, "by": "someone else"})),
            Min::Inspector,
        );
        assert_eq!(sent[0].0, 202, "{:?}", sent[0]);
        assert_eq!(sent[0].1["by"], "li");
        assert_eq!(sent[1].1["by"], "office");

        // Stop-work notice: the office; at red every construction site stops all work, the
        // reference station is not told.
        let notices = by_role(
            port,
            &who,
            "POST",
            "/api/notices",
            &json(serde_json::json!({"level": "red", "note": "红色预警"})),
            Min::Admin,
        );
        let notice = &notices[0].1;
        assert_eq!(notice["issued_by"], "office");
        let sites: Vec<&str> = notice["receipts"]
            .as_array()
            .expect("receipts")
            .iter()
            .map(|r| r["site"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(sites, ["s1", "s2"]);
        assert!(notice["receipts"][0]["received_ts"].is_null());
        let nid = notice["id"].as_i64().expect("notice id");
        let receipts = by_role(
            port,
            &who,
            "POST",
            &format!("/api/notices/{nid}/receipts/s1"),
            &|_| String::new(),
            Min::Inspector,
        );
        // The first confirmation counts.
        assert_eq!(receipts[1].1["receipts"][0]["by"], "li");
        assert_eq!(receipts[1].1["receipts"][0]["via"], "inspector");

        let patrol = by_role(
            port,
            &who,
            "POST",
            "/api/patrol/s1",
            &json(serde_json::json!({"result": "not_working"})),
            Min::Inspector,
        );
        assert_eq!(patrol[0].1["by"], "li");
        assert_eq!(patrol[1].1["by"], "office");

        // User management: the office only.
        let added = by_role(
            port,
            &who,
            "POST",
            "/api/users",
            &|caller| {
                serde_json::json!({"name": format!("new-{caller}"), "role": "viewer", "password": "long enough"})
                    .to_string()
            },
            Min::Admin,
        );
        assert_eq!(added[0].1["name"], "new-admin");
        by_role(port, &who, "POST", "/api/users/new-admin/tokens", &|_| String::new(), Min::Admin);
        by_role(port, &who, "POST", "/api/users/new-admin/disable", &|_| String::new(), Min::Admin);

        // A bad token is no login; the bootstrap token acts as an admin named in `by` for acks.
        let (s, _) = call(port, "POST", "/api/patrol/s1", &Auth::Bearer("dwt_guess".into()), "{}");
        assert_eq!(s, 401);
        let metrics = call(port, "GET", "/metrics", &Auth::None, "").1;
        assert_eq!(
            support::metric(&metrics, "dustwatch_auth_bad_credentials_total"),
            Some(1.0),
            "the guessed token is counted"
        );
        let boot = Auth::Bearer(BOOTSTRAP.into());
        let acked = ok(
            port,
            "POST",
            &format!("/api/alerts/{id}/ack"),
            &boot,
            r#"{"by": "Inspector Wang", "comment": "by phone"}"#,
        );
        assert_eq!(acked["ack_by"], "Inspector Wang");
    })
    .await
    .expect("role checks");
    office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_writes_only_with_its_csrf_token() {
    let office = Office::start().await;
    let port = office.port;
    tokio::task::spawn_blocking(move || {
        let (admin, _, _) = users(port);
        assert!(login(port, "li", "wrong password").is_none());
        let (cookie, csrf) = login(port, "li", "li-password").expect("the inspector logs in");
        let bare = Auth::Session {
            cookie: cookie.clone(),
            csrf: None,
        };
        let with = Auth::Session {
            cookie: cookie.clone(),
            csrf: Some(csrf.clone()),
        };
        // Pages: the phone page lists the sites; without a session it sends the browser to log in.
        let (s, page) = call(port, "GET", "/patrol", &bare, "");
        assert_eq!(s, 200);
        assert!(page.contains("工地 s1") && page.contains(&csrf), "{page}");
        let (s, _) = call(port, "GET", "/patrol", &Auth::None, "");
        assert_eq!(s, 303);

        // A form without the token, or with another one, is refused; with it, recorded.
        let (s, _) = form(port, "/patrol/s1", &bare, &[("result", "working")]);
        assert_eq!(s, 403);
        let (s, _) = form(
            port,
            "/patrol/s1",
            &bare,
            &[("result", "working"), ("csrf", "0000")],
        );
        assert_eq!(s, 403);
        let (s, _) = form(
            port,
            "/patrol/s1",
            &bare,
            &[("result", "rectified"), ("csrf", &csrf)],
        );
        assert_eq!(s, 303);
        // Scripts send it as a header.
        let (s, _) = call(
            port,
            "POST",
            "/api/patrol/s2",
            &bare,
            r#"{"result":"working"}"#,
        );
        assert_eq!(s, 403);
        let (s, _) = call(
            port,
            "POST",
            "/api/patrol/s2",
            &with,
            r#"{"result":"working"}"#,
        );
        assert_eq!(s, 200);
        let night: serde_json::Value =
            serde_json::from_str(&call(port, "GET", "/api/patrol", &Auth::None, "").1)
                .expect("json");
        let got: Vec<(String, String, String)> = night
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                (
                    c["site"].as_str().unwrap_or("").into(),
                    c["result"].as_str().unwrap_or("").into(),
                    c["by"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s1".into(), "rectified".into(), "li".into()),
                ("s2".into(), "working".into(), "li".into())
            ]
        );

        // A viewer's session, token and all, still may not write.
        let (vc, vcsrf) = login(port, "wang", "wang-password").expect("viewer logs in");
        let viewer = Auth::Session {
            cookie: vc,
            csrf: None,
        };
        let (s, _) = form(
            port,
            "/patrol/s1",
            &viewer,
            &[("result", "working"), ("csrf", &vcsrf)],
        );
        assert_eq!(s, 403);

        // Stop-work notices from the page: the office's button, the inspector's confirmation.
        let (s, _) = form(port, "/notices", &bare, &[("csrf", &csrf), ("note", "x")]);
        assert_eq!(s, 403, "an inspector may not issue a notice");
        let (oc, ocsrf) = login(port, "office", "office-password").expect("admin logs in");
        let office_s = Auth::Session {
            cookie: oc,
            csrf: None,
        };
        ok(
            port,
            "PUT",
            "/api/city/level",
            &admin,
            r#"{"level":"yellow"}"#,
        );
        eventually(30, "the level back through the broker", || {
            call(port, "GET", "/api/city/level", &Auth::None, "")
                .1
                .contains("yellow")
                .then_some(())
        });
        let due = "预警等级已升高，尚未发送停工通知";
        let (_, page) = call(port, "GET", "/notices", &office_s, "");
        assert!(page.contains(due), "the page says a notice is due: {page}");
        let (s, _) = form(port, "/notices", &office_s, &[("note", "黄色预警")]);
        assert_eq!(s, 403, "no CSRF token");
        let (s, _) = form(
            port,
            "/notices",
            &office_s,
            &[("csrf", &ocsrf), ("note", "黄色预警")],
        );
        assert_eq!(s, 303);
        let notices = ok(port, "GET", "/api/notices", &Auth::None, "");
        // Yellow stops earthwork: both sites are in an earthwork phase.
        assert_eq!(notices[0]["level"], "yellow");
        assert_eq!(notices[0]["receipts"][1]["work"], "earthwork");
        let nid = notices[0]["id"].as_i64().expect("id");
        let (s, _) = form(
            port,
            &format!("/notices/{nid}/confirm/s2"),
            &viewer,
            &[("csrf", &vcsrf)],
        );
        assert_eq!(s, 403);
        let (s, _) = form(
            port,
            &format!("/notices/{nid}/confirm/s2"),
            &bare,
            &[("csrf", &csrf)],
        );
        assert_eq!(s, 303);
        let notices = ok(port, "GET", "/api/notices", &Auth::None, "");
        assert_eq!(notices[0]["receipts"][1]["by"], "li");
        let (s, page) = call(port, "GET", "/notices", &bare, "");
        assert!(
            s == 200 && page.contains("黄色预警") && !page.contains(due),
            "{page}"
        );

        // Every form a page posts: no login 401; a viewer's session, with its token, 403.
        for (path, fields) in [
            ("/alerts/1/act/order", vec![("kind", "stop_work")]),
            (
                "/alerts/1/act/response",
                vec![("order_id", "1"), ("response", "ok")],
            ),
            (
                "/alerts/1/act/reinspect",
                vec![("order_id", "1"), ("result", "passed")],
            ),
            ("/notices", vec![]),
            ("/notices/1/confirm/s1", vec![]),
            ("/patrol/s1", vec![("result", "working")]),
        ] {
            let (s, _) = form(port, path, &Auth::None, &fields);
            assert_eq!(s, 401, "{path} without login");
            let mut with_token = fields.clone();
            with_token.push(("csrf", &vcsrf));
            let (s, b) = form(port, path, &viewer, &with_token);
            assert_eq!(s, 403, "{path} as a viewer: {b}");
        }

        let metrics = call(port, "GET", "/metrics", &Auth::None, "").1;
        let count = |name: &str| support::metric(&metrics, name).unwrap_or(-1.0);
        assert_eq!(
            count("dustwatch_auth_login_failures_total"),
            1.0,
            "{metrics}"
        );
        assert_eq!(count("dustwatch_auth_logins_total"), 3.0, "{metrics}");

        // Logging out ends the session.
        let (s, _) = form(port, "/logout", &bare, &[("csrf", &csrf)]);
        assert_eq!(s, 303);
        let (s, _) = call(port, "GET", "/patrol", &bare, "");
        assert_eq!(s, 303);

        // Disabling a user ends their sessions.
        let (cookie, csrf) = login(port, "li", "li-password").expect("logs in again");
        ok(port, "POST", "/api/users/li/disable", &admin, "");
        let (s, _) = form(
            port,
            "/patrol/s1",
            &Auth::Session { cookie, csrf: None },
            &[("result", "working"), ("csrf", &csrf)],
        );
        assert_eq!(s, 401);
        assert!(login(port, "li", "li-password").is_none());
    })
    .await
    .expect("sessions");
    office.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_holds_the_alert_open_until_a_reinspection_passes() {
    let office = Office::start().await;
    let port = office.port;
    publish_all(office.broker_port, "fleet-order-1", readings(0, 130)).await;
    let a1 = wait_alert(port, "s1", "active").await;
    wait_alert(port, "s2", "active").await;
    let id = a1["id"].as_i64().expect("id");
    let min = |m: i64| T0 + m * 60_000;

    let (inspector, order) = tokio::task::spawn_blocking(move || {
        let (_, inspector, _) = users(port);
        let order = ok(
            port,
            "POST",
            &format!("/api/alerts/{id}/orders"),
            &inspector,
            &serde_json::json!({"kind": "rectify", "deadline_ts": min(240), "note": "cover the spoil", "ts": min(125)})
                .to_string(),
        );
        let oid = order["id"].as_i64().expect("order");
        let failed = ok(
            port,
            "POST",
            &format!("/api/orders/{oid}/reinspections"),
            &inspector,
            &serde_json::json!({"result": "failed", "note": "spoil uncovered", "ts": min(150)}).to_string(),
        );
        assert_eq!(failed["escalated_to"], "critical");
        // Not before the order.
        let (s, _) = call(
            port,
            "POST",
            &format!("/api/orders/{oid}/reinspections"),
            &inspector,
            &serde_json::json!({"result": "passed", "ts": min(100)}).to_string(),
        );
        assert_eq!(s, 400);
        (inspector, oid)
    })
    .await
    .expect("order");

    // Clean data long past the re-check period: s2 (same data, no order) closes; s1 is held.
    publish_all(office.broker_port, "fleet-order-2", readings(130, 330)).await;
    wait_alert(port, "s2", "closed").await;
    let held = alert_of(port, "s1").expect("s1's alert");
    assert_eq!(held["state"], "cleared", "{held}");

    // A passed re-inspection (event time after the re-check): the next clean data closes it.
    tokio::task::spawn_blocking({
        let inspector = inspector.clone();
        move || {
            ok(
                port,
                "POST",
                &format!("/api/orders/{order}/reinspections"),
                &inspector,
                &serde_json::json!({"result": "passed", "note": "covered", "ts": min(330)})
                    .to_string(),
            );
        }
    })
    .await
    .expect("passed");
    publish_all(office.broker_port, "fleet-order-3", readings(330, 345)).await;
    let closed = wait_alert(port, "s1", "closed").await;
    // Closed on data from the passed re-inspection on: at its minute at the earliest (which
    // minute depends on where the batches happen to end).
    assert!(
        closed["closed_ts"].as_i64().expect("closed") >= min(330),
        "{closed}"
    );

    // The day's report carries the order and both re-inspections.
    tokio::task::spawn_blocking(move || {
        let report = ok(
            port,
            "GET",
            "/reports/daily/2017-01-05.json",
            &Auth::None,
            "",
        );
        let orders = report["actions"]["orders"].as_array().expect("orders");
        assert_eq!(orders.len(), 1, "{report}");
        let results: Vec<&str> = orders[0]["reinspections"]
            .as_array()
            .expect("re-inspections")
            .iter()
            .map(|r| r["result"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(results, ["failed", "passed"]);
        let (s, page) = call(port, "GET", "/reports/daily/2017-01-05", &Auth::None, "");
        assert_eq!(s, 200);
        assert!(
            page.contains("id=\"report-actions\"") && page.contains("未通过"),
            "{page}"
        );
    })
    .await
    .expect("report");
    office.stop().await;
}
