//! The dashboard in a real browser: `dustwatch demo` on free ports, Debian's headless Chromium
//! driven over the DevTools protocol. Checks, in Chinese (the switch `?lang=zh-CN`, kept by its
//! cookie), the level and site names on the overview and the map, that every badge's text meets
//! WCAG AA contrast (4.5:1) as the browser computes it, that sites are listed worst first, that
//! charts render, that live updates arrive without reloading, that an alert can be acknowledged
//! through the page; saves screenshots to target/screenshots/, and fails on any JavaScript error. Skips (with a message) when Chromium
//! is missing, unless DUSTWATCH_REQUIRE_BROWSER is set (CI sets it).

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::browser::{chromium_or_skip, Browser};
use support::*;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

fn api(port: u16, path: &str) -> Value {
    let (code, body) = http_get(port, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Cards worst first: violations, then warnings, then offline, then the rest.
fn assert_worst_first(b: &mut Browser, page: &str) {
    let order = b.eval(
        "[...document.querySelectorAll('.card[data-site]')].map(c => ['violation','warning','offline','unregistered','ok'].findIndex(s => c.classList.contains(s)))",
    );
    let ranks: Vec<i64> = order
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    assert!(!ranks.is_empty(), "{page}: no cards");
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "{page}: cards worst first: {ranks:?}"
    );
}

/// Every badge, status word, level and navigation link: the contrast of its text on the
/// background behind it, as the browser computes both, is at least 4.5:1 (WCAG AA).
fn assert_contrast(b: &mut Browser, page: &str) {
    let bad = b.eval(
        r#"(() => {
          const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
          const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
            .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
          const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3); } return [255, 255, 255]; };
          const out = [];
          for (const e of document.querySelectorAll('.badge, .st, .aqi, .level, header a, .counts div, .sev-warning, .sev-violation, .sev-critical, .muted')) {
            if (!e.textContent.trim() || e.offsetParent === null) continue;
            const a = lum(rgb(getComputedStyle(e).color).slice(0, 3)), c = lum(bg(e));
            const ratio = (Math.max(a, c) + 0.05) / (Math.min(a, c) + 0.05);
            if (ratio < 4.5) out.push(e.className + ' "' + e.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
          }
          return { checked: document.querySelectorAll('.badge, .st, .aqi, .level').length, bad: out };
        })()"#,
    );
    assert!(
        bad["checked"].as_u64() > Some(0),
        "{page}: no badges to check: {bad}"
    );
    assert_eq!(
        bad["bad"].as_array().map_or(1, Vec::len),
        0,
        "{page}: text below 4.5:1 contrast: {bad}"
    );
}

#[test]
fn dashboard_renders_updates_live_and_acknowledges_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
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

    // Overview, as the office's wall screen (1080p) shows it, in Chinese.
    b.viewport(1920, 1080);
    b.goto(&demo.url("/?lang=zh-CN"));
    assert_eq!(b.eval("document.documentElement.lang"), "zh-CN");
    let level = b.eval("document.getElementById('level-now').textContent");
    assert!(
        ["无预警", "蓝色预警", "黄色预警", "橙色预警", "红色预警"]
            .contains(&level.as_str().unwrap_or_default()),
        "the level in force, in Chinese: {level}"
    );
    // Yellow comes at 08:00 local (ten simulated minutes into the demo); live updates bring it
    // and the time it has been in force since, whatever the page first showed.
    b.wait_for(
        60,
        "document.getElementById('level-now').textContent === '黄色预警' \
         && document.getElementById('level-since').textContent.includes('08:00')",
    );
    // Site names as registered (the demo's carry Chinese), on the cards and on the map.
    let han = "/[\\u4e00-\\u9fff]/";
    let names = b.eval(&format!(
        "[...document.querySelectorAll('.card .name')].filter(e => {han}.test(e.textContent)).length"
    ));
    assert!(
        names.as_u64() >= Some(10),
        "Chinese site names on the cards: {names}"
    );
    let map = b.eval(&format!(
        "({{ dots: document.querySelectorAll('#map circle[data-site]').length,
            streets: [...document.querySelectorAll('#map text.street')].filter(e => {han}.test(e.textContent)).length,
            titled: [...document.querySelectorAll('#map circle title')].filter(e => {han}.test(e.textContent)).length }})"
    ));
    let located = api(port, "/api/sites")
        .as_array()
        .map_or(0, |a| a.iter().filter(|s| s["lat"].is_number()).count());
    assert!(located > 0, "the demo's registry has locations");
    assert_eq!(
        map["dots"].as_u64(),
        Some(located as u64),
        "one dot per located site: {map}"
    );
    assert!(
        map["streets"].as_u64() >= Some(2),
        "street labels in Chinese: {map}"
    );
    assert_eq!(
        map["titled"], map["dots"],
        "every dot names its site: {map}"
    );
    assert_worst_first(&mut b, "overview");
    assert_contrast(&mut b, "overview");
    let cards = b.eval("document.querySelectorAll('.card[data-site]').length");
    let n_sites = api(port, "/api/sites").as_array().map_or(0, |a| a.len());
    assert_eq!(cards.as_u64(), Some(n_sites as u64), "one card per site");
    b.wait_for(
        30,
        "live.updates >= 2 && document.getElementById('live').textContent.includes(dw.words.live)",
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
             && document.getElementById('live').textContent === '● 实时 ' + dw.time(window.dwNow)
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
    // Live updates keep the order and the badges readable (the AQI badge's ink follows its
    // colour).
    assert_worst_first(&mut b, "overview after live updates");
    assert_contrast(&mut b, "overview after live updates");
    b.screenshot(&shots.join("overview.png"));
    b.phone(true);
    b.screenshot(&shots.join("overview-phone.png"));
    b.viewport(1400, 1000);

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
    assert_contrast(&mut b, "site page");
    // The PNG chart (drawn with the shipped CJK font) loads as an image too.
    b.eval(
        "(() => { const i = new Image(); i.id = 'png-check'; i.src = document.querySelector('a[href*=\".png\"]').href; document.body.append(i); return true; })()",
    );
    b.wait_for(
        30,
        "document.getElementById('png-check').complete && document.getElementById('png-check').naturalWidth > 0",
    );
    // Not part of the page: off again before the screenshots.
    b.eval("document.getElementById('png-check').remove()");
    b.screenshot(&shots.join("site.png"));
    b.phone(true);
    b.screenshot(&shots.join("site-phone.png"));
    b.viewport(1400, 1000);

    // The daily report and the rankings, reached from the navigation.
    b.eval("document.querySelector('header a[href=\"/reports/daily/today\"]').click()");
    b.wait_for(
        30,
        "location.pathname === '/reports/daily/today' && document.readyState === 'complete'",
    );
    let report = b.eval("document.querySelector('main h1').textContent");
    assert!(
        report.as_str().is_some_and(|t| t.starts_with("日报")),
        "{report}"
    );
    b.screenshot(&shots.join("report.png"));
    b.eval("document.querySelector('header a[href=\"/rankings\"]').click()");
    b.wait_for(
        30,
        "location.pathname === '/rankings' && document.readyState === 'complete'",
    );
    b.wait_for(
        30,
        "document.querySelectorAll('#rank-sites tbody tr').length > 0",
    );
    b.screenshot(&shots.join("rankings.png"));

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
