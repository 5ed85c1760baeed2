//! The office's loop end to end on the real demo (`dustwatch demo`: embedded broker, simulated
//! fleet, aggregator), in headless Chromium: an inspector logs in, orders a site that does
//! earthwork under the yellow warning to stop; the simulated device receives `stop_work` and
//! answers, and the order page shows the answer; a failed re-inspection escalates, a passed one
//! (after the site's data stayed clean for the re-check period) lets the alert close. Meanwhile
//! the webhook receiver and the SMTP sink are away for a while: each still gets exactly one
//! message per change of the alert, as its history on `/api/alerts/{id}` lists them. The daily
//! report counts the day's commands. Everything runs in event time at 120x; nothing waits on a
//! wall-clock duration except for timeouts.

mod support;

use base64::Engine;
use std::path::PathBuf;
use std::process::Stdio;
use support::acting::{call, ok, Auth};
use support::browser::*;
use support::eventually;
use support::sinks::{SmtpSink, WebhookReceiver};
use support::DemoProcess;

/// Simulated seconds per real second.
const SPEED: f64 = 120.0;
/// The re-check period of the test's profile (the default's 2 h, shortened to keep the run short).
const RECHECK_S: i64 = 1800;
const BOOTSTRAP: &str = "demo-test-token";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// The default profile with a shorter re-check period, and the demo's settings pointing
/// notifications at the test's receivers.
fn demo_config(dir: &std::path::Path, webhook_port: u16, smtp_port: u16) -> String {
    let default = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/default.toml"),
    )
    .expect("the default profile");
    assert!(
        default.contains("recheck_s = 7200"),
        "the default profile changed"
    );
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        default.replace("recheck_s = 7200", &format!("recheck_s = {RECHECK_S}")),
    )
    .expect("write profile");
    format!(
        r#"
[rules]
profile = "{profile}"
[commands]
timeout_s = 30
[notify]
retry_max_s = 1
[[notify.webhook]]
name = "generic"
url = "http://127.0.0.1:{webhook_port}/generic"
[notify.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "dustwatch <dustwatch@example.org>"
to = ["office@example.org"]
language = "en"
"#,
        profile = profile.display()
    )
}

/// An email's text: headers as sent, the body decoded (lettre picks quoted-printable or base64
/// for non-ASCII text).
fn decoded(mail: &str) -> String {
    let (head, body) = mail.split_once("\n\n").unwrap_or((mail, ""));
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("content-transfer-encoding: base64") {
        let compact: String = body.split_whitespace().collect();
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default(),
        )
        .into_owned()
    } else if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    } else {
        body.to_string()
    };
    format!("{head}\n\n{body}")
}

/// The alert as the API shows it, with its history.
fn alert(port: u16, id: i64) -> serde_json::Value {
    ok(port, "GET", &format!("/api/alerts/{id}"), &Auth::None, "")
}

/// The fleet's event-time clock (Unix ms), from `/metrics`.
fn fleet_clock(port: u16) -> Option<i64> {
    let (_, text) = call(port, "GET", "/metrics", &Auth::None, "");
    text.lines()
        .find(|l| l.starts_with("dustwatch_fleet_clock_timestamp_seconds "))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|s| (s * 1000.0) as i64)
}

fn orders(port: u16, alert_id: i64) -> serde_json::Value {
    ok(
        port,
        "GET",
        &format!("/api/alerts/{alert_id}/orders"),
        &Auth::None,
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_the_device_and_the_alert_closes_with_one_message_per_change() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let mut receiver = WebhookReceiver::start("unused-secret").await;
    let mut sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = demo_config(dir.path(), receiver.port, sink.port);
    let demo = DemoProcess::start_configured(SPEED, &config, Stdio::null());
    let port = demo.http_port;

    // An inspector, made with the bootstrap token as an office would.
    ok(
        port,
        "POST",
        "/api/users",
        &Auth::Bearer(BOOTSTRAP.into()),
        r#"{"name":"li","role":"inspector","password":"li-password"}"#,
    );

    // The earthwork sites that ignore the yellow warning raise a restriction alert soon after
    // 08:00 simulated.
    let (id, site, rule) = tokio::task::spawn_blocking(move || {
        eventually(300, "a restriction alert at an earthwork site", || {
            let (_, body) = call(port, "GET", "/api/alerts?state=active", &Auth::None, "");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            v.as_array()?
                .iter()
                .filter(|a| a["kind"] == "restriction" && a["state"] == "active")
                .find_map(|a| {
                    Some((
                        a["id"].as_i64()?,
                        a["site"].as_str()?.to_string(),
                        a["rule"].as_str()?.to_string(),
                    ))
                })
        })
    })
    .await
    .expect("alert search");
    let url = move |p: &str| format!("http://127.0.0.1:{port}{p}");

    // In the browser: log in, order the site to stop work.
    let mut b = tokio::task::spawn_blocking(move || {
            let mut b = Browser::launch(&chromium);
            b.goto(&url(&format!("/alerts/{id}/act?lang=en")));
            b.wait_for(20, "location.pathname === '/login'");
            b.log_in("li", "li-password");
            b.wait_for(
                30,
                &format!("location.pathname === '/alerts/{id}/act' && document.readyState === 'complete' && !!document.querySelector('form.order')"),
            );
            b.eval(
                "document.querySelector('input[name=kind][value=stop_work]').checked = true;
                 document.querySelector('form.order textarea[name=note]').value = 'Stop earthwork now';
                 document.querySelector('form.order button').click(); true",
            );
            b.wait_for(
                30,
                "document.readyState === 'complete' && !!document.querySelector('form.reinspect')",
            );
            b
    })
    .await
    .expect("browser: order");

    // The receivers go away while the alert changes.
    receiver.stop().await;
    sink.stop().await;

    // The device got `stop_work` for the order and answered; the action page shows it.
    b = tokio::task::spawn_blocking(move || {
            let order_id = eventually(120, "the device's answer to stop_work", || {
                let o = orders(port, id);
                let o = o.get(0)?;
                let c = o["device_commands"].as_array()?.first()?.clone();
                (c["state"] == "answered").then_some(())?;
                assert_eq!(c["command"]["cmd"], "stop_work", "{c}");
                assert_eq!(c["ok"], true, "{c}");
                assert_eq!(c["by"], "li", "{c}");
                let detail = c["detail"].as_str().unwrap_or("");
                assert!(detail.starts_with("work stopped until resumed (order-"), "{c}");
                o["id"].as_i64()
            });
            b.goto(&url(&format!("/alerts/{id}/act?lang=en")));
            b.wait_for(
                30,
                "document.readyState === 'complete' && !!document.querySelector('li.device-answer[data-cmd=stop_work][data-state=answered][data-ok=true]')",
            );
            let text = b.eval("document.querySelector('li.device-answer').textContent");
            assert!(
                text.as_str().unwrap_or("").contains("carried out by the device"),
                "{text}"
            );
            let orders_now = orders(port, id);
            assert_eq!(orders_now[0]["id"].as_i64(), Some(order_id));
            assert_eq!(orders_now[0]["kind"], "stop_work");

            // A failed re-inspection: the alert escalates.
            b.eval(
                "document.querySelector('input[name=result][value=failed]').checked = true;
                 document.querySelector('form.reinspect textarea[name=note]').value = 'dust still on the road';
                 document.querySelector('form.reinspect button').click(); true",
            );
            b.wait_for(
                30,
                "document.readyState === 'complete' && document.querySelectorAll('tr.reinspection[data-result=failed]').length === 1 && !!document.querySelector('strong.escalated')",
            );
            b
    })
    .await
    .expect("browser: device answer and failed re-inspection");

    // With work stopped the restriction clears; its re-check period then runs on clean data.
    tokio::task::spawn_blocking(move || {
        eventually(
            300,
            "the alert cleared and its re-check period over",
            || {
                let a = alert(port, id);
                (a["state"] == "cleared").then_some(())?;
                let cleared = a["cleared_ts"].as_i64()?;
                (fleet_clock(port)? > cleared + RECHECK_S * 1000).then_some(())
            },
        )
    })
    .await
    .expect("waiting for the re-check");
    // Still open: the order holds it until a re-inspection passes.
    assert_eq!(alert(port, id)["state"], "cleared");

    // The clearing happened while both receivers were away.
    let cleared_during_outage = receiver
        .got("/generic")
        .iter()
        .filter(|h| h.body["alert"]["id"].as_i64() == Some(id))
        .all(|h| h.body["change"] != "cleared");
    assert!(cleared_during_outage, "the receiver was away");
    receiver.restart().await;
    sink.restart().await;

    // A passed re-inspection: the alert closes on the data that follows.
    let b = tokio::task::spawn_blocking(move || {
            b.eval(
                "document.querySelector('input[name=result][value=passed]').checked = true;
                 document.querySelector('form.reinspect textarea[name=note]').value = 'covered and sprinkled';
                 document.querySelector('form.reinspect button').click(); true",
            );
            b.wait_for(
                30,
                "document.readyState === 'complete' && document.querySelector('section.order').dataset.state === 'passed'",
            );
            eventually(300, "the alert closed", || {
                (alert(port, id)["state"] == "closed").then_some(())
            });
            b.goto(&url(&format!("/alerts/{id}/act?lang=en")));
            b.wait_for(
                30,
                "document.readyState === 'complete' && !!document.querySelector('li.device-answer[data-cmd=resume_work]')",
            );
            std::fs::create_dir_all(screenshots()).expect("screenshot dir");
            b.screenshot(&screenshots().join("acting-e2e-order.png"));
            assert!(b.js_errors.is_empty(), "JavaScript errors: {:?}", b.js_errors);
            b
    })
    .await
    .expect("browser: passed re-inspection");
    drop(b);

    let o = orders(port, id);
    let results: Vec<_> = o[0]["reinspections"]
        .as_array()
        .expect("re-inspections")
        .iter()
        .map(|r| (r["result"].clone(), r["by"].clone()))
        .collect();
    assert_eq!(
        results,
        vec![
            (serde_json::json!("failed"), serde_json::json!("li")),
            (serde_json::json!("passed"), serde_json::json!("li")),
        ]
    );
    assert!(o[0]["reinspections"][0]["escalated_to"].is_string(), "{o}");

    // Every change of the alert reached each receiver exactly once, outage or not.
    let history: Vec<String> = alert(port, id)["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["change"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(history.first().map(String::as_str), Some("opened"));
    assert_eq!(history.last().map(String::as_str), Some("closed"));
    let hooks_of = |receiver: &WebhookReceiver| -> Vec<String> {
        receiver
            .got("/generic")
            .iter()
            .filter(|h| h.body["alert"]["id"].as_i64() == Some(id))
            .map(|h| h.body["change"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let a = alert(port, id);
    let opened = chrono::DateTime::from_timestamp_millis(a["opened_ts"].as_i64().expect("opened"))
        .expect("a time")
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let mails_of = |sink: &SmtpSink| -> Vec<String> {
        sink.mails()
            .iter()
            .map(|m| decoded(m))
            .filter(|m| {
                m.contains(&format!("({site})"))
                    && m.contains(&format!("Rule: {rule}\n"))
                    && m.contains(&format!("Opened: {opened}\n"))
            })
            .collect()
    };
    // Delivery after the outage goes on in the background: wait for the last change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let hooks = hooks_of(&receiver);
        let mails = mails_of(&sink);
        if hooks.last().map(String::as_str) == Some("closed")
            && mails.last().is_some_and(|m| m.contains("Alert closed"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the closing message: hooks {hooks:?}, {} mails",
            mails.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let hooks = hooks_of(&receiver);
    // A raised severity is a notified change stored as an update of the alert, not a history
    // entry; every other message is one history entry.
    let without_escalations: Vec<String> = hooks
        .iter()
        .filter(|c| *c != "escalated")
        .cloned()
        .collect();
    assert_eq!(without_escalations, history, "webhook messages vs history");
    let mails = mails_of(&sink);
    assert_eq!(mails.len(), hooks.len(), "one email per change: {hooks:?}");
    eprintln!(
        "alert {id} ({site}, {rule}): history {history:?}; webhook {hooks:?}; {} emails",
        mails.len()
    );
    for (mail, change) in mails.iter().zip(&hooks) {
        let title = match change.as_str() {
            "opened" => "Alert opened",
            "reactivated" => "Alert active again",
            "escalated" => "Alert escalated",
            "cleared" => "Alert cleared",
            "closed" => "Alert closed",
            "acknowledged" => "Alert acknowledged",
            other => panic!("unexpected change {other}"),
        };
        assert!(mail.contains(title), "expected `{title}` in\n{mail}");
    }

    // The daily report of the simulated day counts the commands: the stop answered, the resume.
    let report = ok(
        port,
        "GET",
        &format!("/reports/daily/{}.json", &opened[..10]),
        &Auth::None,
        "",
    );
    let kinds = report["commands"]
        .as_array()
        .expect("the report's commands");
    let of = |k: &str| kinds.iter().find(|c| c["kind"] == k).cloned();
    let stop = of("stop_work").expect("stop_work in the report");
    assert!(stop["sent"].as_u64() >= Some(1), "{stop}");
    assert!(stop["answered"].as_u64() >= Some(1), "{stop}");
    let resume = of("resume_work").expect("resume_work in the report");
    assert!(resume["sent"].as_u64() >= Some(1), "{resume}");
    assert_eq!(report["actions"]["orders"][0]["id"], o[0]["id"]);

    demo.interrupt();
    receiver.stop().await;
    sink.stop().await;
}
