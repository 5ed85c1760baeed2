//! The office's screen over real HTTP: Chinese by default (site and street names as registered),
//! English by `?lang=en` (remembered in a cookie), by `Accept-Language` or by `[http] language`;
//! the overview's district map from the registry's locations; HTML error pages for browsers and
//! JSON for the API; CSV with a byte-order mark and headers in the page's language.

mod support;

use dustwatch::web::i18n::Lang;
use dustwatch_protocol::{SiteInfo, SiteKind};
use support::http::*;

fn site(id: &str, name: &str, street: &str, lat: f64, lon: f64) -> SiteInfo {
    SiteInfo {
        id: id.into(),
        name: name.into(),
        street: street.into(),
        kind: SiteKind::Construction,
        phase: Default::default(),
        lat: Some(lat),
        lon: Some(lon),
        reference: None,
    }
}

fn sites() -> Vec<SiteInfo> {
    vec![
        site("yb-3", "迎宾路3号地块", "迎宾路街道", 34.80, 113.60),
        site("gx-1", "古荥镇学校", "古荥镇", 34.90, 113.50),
    ]
}

const HTML: (&str, &str) = ("Accept", "text/html,application/xhtml+xml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_chinese_by_default_and_english_when_asked() {
    let w = Web::start_with(|_| {}, sites()).await;
    let port = w.port;
    tokio::task::spawn_blocking(move || {
        // No preference: Chinese, names exactly as registered, the map with both sites.
        let zh = get_with(port, "/", &[]);
        assert_eq!(zh.status, 200);
        assert!(zh.body.contains(r#"<html lang="zh-CN""#), "{}", zh.body);
        assert!(zh.body.contains("无预警"), "the level in Chinese");
        assert!(zh.body.contains("迎宾路3号地块"), "the name as registered");
        assert!(zh.body.contains("总览") && zh.body.contains("日报") && zh.body.contains("排名"));
        assert!(zh.body.contains(r#"<svg class="map""#), "the district map");
        assert_eq!(
            zh.body.matches("<circle").count(),
            2,
            "one dot per located site"
        );
        assert!(
            zh.body.contains(">迎宾路街道</text>") && zh.body.contains(">古荥镇</text>"),
            "street labels on the map"
        );
        assert!(!zh.body.contains(">Overview<"), "no English navigation");
        assert!(
            zh.body.contains(r#"<table id="street-ranking">"#) && zh.body.contains("街道排名"),
            "today's street ranking on the overview"
        );

        // The switch: English, remembered by a cookie.
        let en = get_with(port, "/?lang=en", &[]);
        assert!(en.body.contains(r#"<html lang="en""#));
        assert!(en.body.contains("no warning") && en.body.contains(">Overview<"));
        assert!(
            en.body.contains("迎宾路3号地块"),
            "names are never translated"
        );
        let cookie = en.header("set-cookie").unwrap_or_default();
        assert!(cookie.starts_with("lang=en"), "remembered: {cookie}");
        let again = get_with(port, "/alerts", &[("Cookie", "lang=en")]);
        assert!(
            again.body.contains(r#"<html lang="en""#),
            "the cookie keeps English"
        );

        // The browser's preference.
        let en = get_with(port, "/", &[("Accept-Language", "en-US,en;q=0.9")]);
        assert!(en.body.contains(r#"<html lang="en""#));
        let zh = get_with(port, "/", &[("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")]);
        assert!(zh.body.contains(r#"<html lang="zh-CN""#));
        // The switch wins over the browser.
        let zh = get_with(port, "/?lang=zh-CN", &[("Accept-Language", "en")]);
        assert!(zh.body.contains(r#"<html lang="zh-CN""#));

        // The rankings page and today's report are pages in the navigation.
        let r = get_with(port, "/rankings", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("街道排名") && r.body.contains("迎宾路街道"));
        let d = get_with(port, "/reports/daily/today", &[]);
        assert_eq!(d.status, 200, "{}", d.body);
        assert!(d.body.contains("迎宾路3号地块") && d.body.contains("无事件"));
    })
    .await
    .expect("checks");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_language_applies_when_the_browser_names_none() {
    let w = Web::start_with(|c| c.http.language = Lang::En, sites()).await;
    let port = w.port;
    tokio::task::spawn_blocking(move || {
        let en = get_with(port, "/", &[]);
        assert!(en.body.contains(r#"<html lang="en""#), "{}", en.body);
        let zh = get_with(port, "/", &[("Accept-Language", "zh-CN")]);
        assert!(zh.body.contains(r#"<html lang="zh-CN""#));
    })
    .await
    .expect("checks");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_error_pages_and_the_api_gets_json() {
    let w = Web::start_with(|_| {}, sites()).await;
    let port = w.port;
    tokio::task::spawn_blocking(move || {
        let page = get_with(port, "/sites/unknown-id", &[HTML]);
        assert_eq!(page.status, 404);
        assert!(
            page.header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "{:?}",
            page.headers
        );
        assert!(page.body.contains("404 未找到") && page.body.contains("unknown-id"));
        let page = get_with(port, "/no/such/page", &[HTML, ("Cookie", "lang=en")]);
        assert_eq!(page.status, 404);
        assert!(page.body.contains("404 Not found"), "{}", page.body);
        let bad = get_with(port, "/alerts?state=bogus", &[HTML]);
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("400 请求有误") && bad.body.contains("bogus"));

        // The API answers JSON whatever the client accepts; so does a page without `text/html`.
        for (path, headers) in [
            ("/api/alerts/999999", vec![HTML]),
            ("/api/sites/unknown-id/series?metric=pm10", vec![HTML]),
            ("/sites/unknown-id", vec![]),
        ] {
            let r = get_with(port, path, &headers);
            assert!(r.status >= 400, "{path}");
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "{path}: {:?}",
                r.headers
            );
            assert!(r.body.starts_with("{\"error\""), "{path}: {}", r.body);
        }
    })
    .await
    .expect("checks");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_has_a_byte_order_mark_and_headers_in_the_page_language() {
    let w = Web::start_with(|_| {}, sites()).await;
    let port = w.port;
    tokio::task::spawn_blocking(move || {
        let zh = get_with(port, "/reports/daily/2017-01-02.csv", &[]);
        assert_eq!(zh.status, 200);
        assert!(
            zh.body.starts_with("\u{feff}日期,街道,站点,名称"),
            "{}",
            zh.body
        );
        assert!(zh.body.contains("迎宾路3号地块"), "{}", zh.body);
        let en = get_with(port, "/reports/daily/2017-01-02.csv?lang=en", &[]);
        assert!(
            en.body.starts_with("\u{feff}Date,Street,Site,Name"),
            "{}",
            en.body
        );
        let series = get_with(
            port,
            "/api/sites/yb-3/series.csv?metric=pm10&from=1483228800000&to=1483232400000",
            &[],
        );
        assert_eq!(series.status, 200, "{}", series.body);
        assert!(
            series.body.starts_with("\u{feff}ts_ms,本地时间"),
            "{}",
            series.body
        );
    })
    .await
    .expect("checks");
    w.stop().await;
}
