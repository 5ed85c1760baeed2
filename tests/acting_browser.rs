//! In headless Chromium: an inspector logs in through the login page, orders the violating site
//! to stop work from the alert's action page, records a failed and then a passed re-inspection
//! (each form carries the session's CSRF token), and the phone page checks a site in on patrol.

mod support;

use std::path::PathBuf;
use support::acting::*;
use support::browser::*;
use support::{eventually, publish_all};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspector_logs_in_orders_and_reinspects_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let office = Office::start().await;
    let port = office.port;
    publish_all(office.broker_port, "fleet-browser", readings(0, 130)).await;
    tokio::task::spawn_blocking(move || {
        let id = eventually(60, "s1's alert", || pm10_alert(port, "s1", "")?["id"].as_i64());
        users(port);
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let mut b = Browser::launch(&chromium);
        b.phone(true);

        // Not logged in: the action page sends the browser to the login page, and back after.
        // In Chinese, as the office works (the switch is remembered by a cookie).
        b.goto(&url(&format!("/alerts/{id}/act?lang=zh-CN")));
        b.wait_for(10, "location.pathname === '/login'");
        b.log_in("li", "li-password");
        b.wait_for(
            20,
            &format!("location.pathname === '/alerts/{id}/act' && document.readyState === 'complete' && !!document.querySelector('form.order')"),
        );
        let text = b.eval("document.body.textContent");
        let text = text.as_str().unwrap_or("");
        assert!(text.contains("当前用户") && text.contains("巡查员") && text.contains("下达指令"), "{text}");
        // The session cookie is not readable by scripts.
        let cookies = b.eval("document.cookie");
        assert!(!cookies.as_str().unwrap_or("").contains("dw_session"), "{cookies}");

        // Order the site to stop work.
        b.eval(
            "document.querySelector('input[name=kind][value=stop_work]').checked = true;
             document.querySelector('form.order textarea[name=note]').value = '立即停止土方作业';
             document.querySelector('form.order button').click(); true",
        );
        b.wait_for(20, "document.readyState === 'complete' && !!document.querySelector('form.reinspect')");

        // The site's answer, as the inspector heard it.
        b.eval(
            "document.querySelector('form.response textarea').value = '已停工，正在覆盖裸土';
             document.querySelector('form.response button').click(); true",
        );
        b.wait_for(
            20,
            "document.readyState === 'complete' && document.body.textContent.includes('已停工，正在覆盖裸土') && !!document.querySelector('form.reinspect')",
        );

        // A failed re-inspection, then a passed one.
        for (result, note) in [("failed", "道路仍有扬尘"), ("passed", "已覆盖，已洒水")] {
            let before = b.eval("document.querySelectorAll('tr.reinspection').length");
            b.eval(&format!(
                "document.querySelector('input[name=result][value={result}]').checked = true;
                 document.querySelector('form.reinspect textarea[name=note]').value = '{note}';
                 document.querySelector('form.reinspect button').click(); true"
            ));
            b.wait_for(
                20,
                &format!("document.readyState === 'complete' && document.querySelectorAll('tr.reinspection').length > {before}"),
            );
        }
        let rows = b.eval(
            "[...document.querySelectorAll('tr.reinspection')].map(r => r.dataset.result + ' ' + r.children[1].textContent)",
        );
        assert_eq!(rows, serde_json::json!(["failed li", "passed li"]));
        assert_eq!(b.eval("document.querySelector('section.order').dataset.state"), "passed");
        std::fs::create_dir_all(screenshots()).expect("screenshot dir");
        b.screenshot(&screenshots().join("acting-reinspection.png"));

        // What the browser did is on record under the inspector's name.
        let orders = ok(port, "GET", &format!("/api/alerts/{id}/orders"), &Auth::None, "");
        assert_eq!(orders[0]["issued_by"], "li");
        assert_eq!(orders[0]["kind"], "stop_work");
        assert_eq!(orders[0]["state"], "passed");
        assert_eq!(orders[0]["response_by"], "li");
        assert_eq!(orders[0]["reinspections"][0]["escalated_to"], "critical");

        // The phone page: check a site in.
        b.goto(&url("/patrol"));
        b.eval(
            "document.querySelector('li.patrol-site[data-site=s2] button[value=not_working]').click(); true",
        );
        b.wait_for(
            20,
            "document.readyState === 'complete' && !!document.querySelector('li.patrol-site[data-site=s2] .checkin[data-result=not_working]')",
        );
        b.screenshot(&screenshots().join("acting-patrol.png"));
        assert!(b.js_errors.is_empty(), "JavaScript errors: {:?}", b.js_errors);
    })
    .await
    .expect("browser");
    office.stop().await;
}
