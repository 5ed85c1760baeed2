//! The page shell shared by every HTML page: the stylesheet and shared script (served from
//! assets/web), the navigation, the language switch, and the words the script needs.

use super::html::escape;
use super::i18n::Lang;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

pub const CSS: &str = include_str!("../../assets/web/dustwatch.css");
pub const JS: &str = include_str!("../../assets/web/dustwatch.js");

/// `GET /assets/{file}`: the stylesheet and the shared script.
pub async fn asset(
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<Response, super::WebError> {
    let (body, kind) = match file.as_str() {
        "dustwatch.css" => (CSS, "text/css; charset=utf-8"),
        "dustwatch.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(super::WebError::NotFound(format!("asset `{file}`"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Alerts,
    Report,
    Rankings,
    Dashboards,
    None,
}

/// The language and time zone a page is written in.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
}

impl Ui {
    pub fn new(lang: Lang, state: &super::AppState) -> Ui {
        Ui { lang, tz: state.tz }
    }

    pub fn t(&self) -> &'static super::i18n::Strings {
        self.lang.t()
    }

    /// A time in the configured zone, with the date: `2026-11-29 18:05`.
    pub fn time(&self, ms: Option<i64>) -> String {
        super::html::time(ms, self.tz)
    }
}

/// A page's Content-Security-Policy: its own scripts by a fresh nonce, nothing else inline.
/// Styles stay 'unsafe-inline' (status colours are style attributes; a style cannot run code).
fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// 128 random bits for a page's script nonce.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness: the page's scripts are then blocked (the CSP names no valid
        // nonce), which is safe; the data is still shown.
        tracing::warn!("no random nonce for a page's scripts");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON inside a `<script type=application/json>`: `<` escaped so no string can close it.
fn json_in_html(v: &serde_json::Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// A full page with its Content-Security-Policy. `body` must already be escaped where it carries
/// data. A non-empty `script` makes the page follow the live stream.
pub fn page(ui: Ui, title: &str, active: Nav, body: &str, script: &str) -> Response {
    let t = ui.t();
    let nav = [
        ("/".to_string(), t.nav_overview, Nav::Overview),
        ("/alerts".to_string(), t.nav_alerts, Nav::Alerts),
        (
            "/reports/daily/today".to_string(),
            t.nav_report,
            Nav::Report,
        ),
        ("/rankings".to_string(), t.nav_rankings, Nav::Rankings),
        ("/dashboards".to_string(), t.nav_dashboards, Nav::Dashboards),
    ]
    .iter()
    .map(|(href, name, nav)| {
        let on = if *nav == active { " class=on" } else { "" };
        format!("<a href=\"{href}\"{on}>{name}</a>")
    })
    .collect::<String>();
    let other = Lang::ALL
        .into_iter()
        .find(|l| *l != ui.lang)
        .unwrap_or_default();
    let nonce = nonce();
    let live = if script.is_empty() { "" } else { " data-live" };
    let html = Html(format!(
        "<!doctype html><html lang={lang} data-tz=\"{tz}\"><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <link rel=icon href=\"data:,\"><title>{title} — {brand}</title>\
         <link rel=stylesheet href=\"/assets/dustwatch.css\">\
         <script nonce={nonce} type=application/json id=dw-words>{words}</script>\
         <script nonce={nonce} src=\"/assets/dustwatch.js\"></script></head>\
         <body{live}><header><a class=brand href=\"/\">{brand}</a>{nav}\
         <span class=right><span id=city-level class=level title=\"{city_level}\"></span>\
         <span id=live class=muted></span>\
         <a href=\"?lang={other_code}\" hreflang={other_code} id=lang-switch>{switch}</a></span></header>\
         <main>{body}</main><footer>{times_in} {tz}</footer>\
         <script nonce={nonce}>{script}</script></body></html>",
        lang = ui.lang.code(),
        tz = escape(ui.tz.name()),
        title = escape(title),
        brand = t.brand,
        words = json_in_html(&ui.lang.client_words()),
        city_level = t.city_level,
        other_code = other.code(),
        switch = t.switch_to,
        times_in = t.times_in,
    ));
    let mut response = html.into_response();
    if let Ok(v) = HeaderValue::from_str(&page_csp(&nonce)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    response
}
