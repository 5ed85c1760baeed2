//! The dashboard in a real browser: `dustwatch demo` on free ports, Debian's headless Chromium
//! driven over the DevTools protocol. Checks that sites and charts render, that live updates
//! arrive without reloading, that an alert can be acknowledged through the page, saves screenshots
//! to target/screenshots/, and fails on any JavaScript error. Skips (with a message) when Chromium
//! is missing, unless DUSTWATCH_REQUIRE_BROWSER is set (CI sets it).

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::browser::{browser_required, chromium_binary, Browser};
use support::*;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

fn api(port: u16, path: &str) -> Value {
    let (code, body) = http_get(port, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn dashboard_renders_updates_live_and_acknowledges_in_chromium() {
    let Some(chromium) = chromium_binary() else {
        assert!(
            !browser_required(),
            "DUSTWATCH_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium not installed (apt-get install chromium); set DUSTWATCH_REQUIRE_BROWSER=1 to make this a failure");
        return;
    };
    let demo = DemoProcess::start(600.0);
    let port = demo.http_port;
    // Sites registered and reporting.
    eventually(60, "demo sites reporting", || {
        let sites = api(port, "/api/sites");
        let n = sites
            .as_array()?
            .iter()
            .filter(|s| !s["latest"].is_null())
            .count();
        (n >= 10).then_some(())
    });

    let mut b = Browser::launch(&chromium);
    let shots = screenshots();

    // Overview: every site as a card, live updates arriving over SSE.
    b.goto(&demo.url("/"));
    let cards = b.eval("document.querySelectorAll('.card[data-site]').length");
    let n_sites = api(port, "/api/sites").as_array().map_or(0, |a| a.len());
    assert_eq!(cards.as_u64(), Some(n_sites as u64), "one card per site");
    b.wait_for(
        30,
        "live.updates >= 2 && document.getElementById('live').textContent.includes('live')",
    );
    // Every `sites` event carries the fleet's newest event time (shown in the header) and rewrites
    // every card. Mark the fields of the first card as stale; the next updates must advance the
    // event time and overwrite the marks. (Not the data age: the simulated fleet reports in step,
    // so a card's age stays "0 s" unless a snapshot happens to catch a device mid-step.)
    let seen = b.eval(
        "(() => { const c = document.querySelector('.card[data-site]');
           for (const f of ['status', 'pm25', 'pm10', 'age', 'aqi', 'alerts'])
             c.querySelector('[data-f=' + f + ']').textContent = 'stale';
           return { updates: live.updates, now: window.dwNow }; })()",
    );
    let (updates, now) = (seen["updates"].as_u64(), seen["now"].as_i64());
    let (Some(updates), Some(now)) = (updates, now) else {
        panic!("live state after two updates: {seen}");
    };
    b.wait_for(
        60,
        &format!(
            "live.updates >= {updates} + 2 && window.dwNow > {now}
             && document.getElementById('live').textContent === '● live ' + dw.time(window.dwNow)
             && ![...document.querySelectorAll('.card[data-site] [data-f]')].some(e => e.textContent === 'stale')"
        ),
    );
    let age = b.eval("document.querySelector('.card[data-site] [data-f=age]').textContent");
    assert!(
        age.as_str().is_some_and(|a| a == "—"
            || a.strip_suffix(" s")
                .is_some_and(|n| n.parse::<u64>().is_ok())),
        "the first card's data age after live updates: {age}"
    );
    b.screenshot(&shots.join("overview.png"));
    b.phone(true);
    b.screenshot(&shots.join("overview-phone.png"));
    b.phone(false);

    // Site page: the chart and the AQI calendar load as images.
    let site = api(port, "/api/sites")
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["kind"] == "construction" && !s["latest"].is_null())
                .and_then(|s| s["id"].as_str().map(str::to_string))
        })
        .expect("a reporting construction site");
    b.goto(&demo.url(&format!("/sites/{site}")));
    b.wait_for(
        30,
        "[...document.images].length >= 2 && [...document.images].every(i => i.complete && i.naturalWidth > 0)",
    );
    b.screenshot(&shots.join("site.png"));
    b.phone(true);
    b.screenshot(&shots.join("site-phone.png"));
    b.phone(false);

    // The office wall-screen dashboard: every panel renders.
    b.goto(&demo.url("/dashboards/office"));
    b.wait_for(
        60,
        "[...document.images].length >= 4 && [...document.images].every(i => i.complete && i.naturalWidth > 0)",
    );
    b.screenshot(&shots.join("dashboard-office.png"));

    // Acknowledge an open alert through the alerts page.
    let alert = eventually(240, "an open, unacknowledged alert", || {
        api(port, "/api/alerts?state=open")
            .as_array()?
            .iter()
            .find(|a| a["acknowledged"] == false)
            .and_then(|a| a["id"].as_i64())
    });
    b.goto(&demo.url("/alerts?state=all"));
    b.wait_for(
        30,
        &format!("document.querySelector('form.ack[data-id=\"{alert}\"]') !== null"),
    );
    b.eval(&format!(
        "(() => {{ document.querySelector('input[name=token]').value = {token:?};
           const f = document.querySelector('form.ack[data-id=\"{alert}\"]');
           f.by.value = 'browser test'; f.comment.value = 'site told to stop and sprinkle';
           f.requestSubmit(); return true; }})()",
        token = demo.token
    ));
    b.wait_for(
        30,
        &format!("!document.querySelector('form.ack[data-id=\"{alert}\"]') && document.body.textContent.includes('browser test')"),
    );
    let acked = eventually(30, "the acknowledgement stored", || {
        api(port, "/api/alerts?state=all")
            .as_array()?
            .iter()
            .find(|a| a["id"].as_i64() == Some(alert) && a["acknowledged"] == true)
            .cloned()
    });
    assert_eq!(acked["ack_by"], "browser test");
    assert_eq!(acked["ack_comment"], "site told to stop and sprinkle");
    b.screenshot(&shots.join("alerts.png"));

    assert!(
        b.js_errors.is_empty(),
        "JavaScript errors in the pages: {:#?}",
        b.js_errors
    );

    // A write with a wrong token is refused, and the page says so instead of throwing. (Chromium
    // logs the 401 itself; that one entry is expected.)
    b.eval("localStorage.removeItem('dustwatch-token')");
    b.goto(&demo.url("/"));
    b.eval(
        "(() => { document.querySelector('#level-form input[name=token]').value = 'wrong';
           document.querySelector('#level-form').requestSubmit(); return true; })()",
    );
    b.wait_for(
        30,
        "document.getElementById('level-msg').textContent.length > 0",
    );
    let msg = b.eval("document.getElementById('level-msg').textContent");
    assert!(
        msg.as_str().is_some_and(|m| m.contains("token")),
        "the page shows why: {msg}"
    );
    b.js_errors
        .retain(|e| !(e.contains("status of 401") && e.contains("/api/city/level")));

    assert!(
        b.js_errors.is_empty(),
        "JavaScript errors in the pages: {:#?}",
        b.js_errors
    );
}
