//! The page shell shared by every HTML page: the stylesheet and shared script (served from
//! assets/web), the navigation, the language switch, and the words the script needs. Pages are
//! maud templates: every spliced value is escaped.

use super::i18n::Lang;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

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

/// JSON inside a `<script type=application/json>`: `<` escaped so no string can close it. (A
/// script element's text is not HTML: entities would reach the parser as they are.)
fn json_in_html(v: &serde_json::Value) -> PreEscaped<String> {
    PreEscaped(v.to_string().replace('<', "\\u003c"))
}

/// What a page does in the browser. Every script is in assets/web/dustwatch.js; a page names its
/// part there (`dw.pages`) by `data-page`, and live pages follow the one `/events` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Nothing live (the report, the rankings, error pages).
    Static,
    /// The header's clock and city level follow the live stream.
    Live,
    /// Live, and the page's own part of dustwatch.js runs (`overview`, `site`, `alerts`, ...).
    Page(&'static str),
}

/// The navigation bar.
fn nav(t: &super::i18n::Strings, active: Nav) -> Markup {
    let entries = [
        ("/", t.nav_overview, Nav::Overview),
        ("/alerts", t.nav_alerts, Nav::Alerts),
        ("/reports/daily/today", t.nav_report, Nav::Report),
        ("/rankings", t.nav_rankings, Nav::Rankings),
        ("/dashboards", t.nav_dashboards, Nav::Dashboards),
    ];
    html! {
        @for (href, name, nav) in entries {
            a href=(href) class=[(nav == active).then_some("on")] { (name) }
        }
    }
}

/// A full page with its Content-Security-Policy.
pub fn page(ui: Ui, title: &str, active: Nav, script: Script, body: Markup) -> Response {
    let t = ui.t();
    let other = Lang::ALL
        .into_iter()
        .find(|l| *l != ui.lang)
        .unwrap_or_default();
    let nonce = nonce();
    let (live, name) = match script {
        Script::Static => (false, None),
        Script::Live => (true, None),
        Script::Page(name) => (true, Some(name)),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(ui.lang.code()) data-tz=(ui.tz.name()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="icon" href="data:,";
                title { (title) " — " (t.brand) }
                link rel="stylesheet" href="/assets/dustwatch.css";
                script nonce=(nonce) type="application/json" id="dw-words" {
                    (json_in_html(&ui.lang.client_words()))
                }
                script nonce=(nonce) src="/assets/dustwatch.js" {}
            }
            body data-live[live] data-page=[name] {
                header {
                    a.brand href="/" { (t.brand) }
                    (nav(t, active))
                    span.right {
                        span #city-level.level title=(t.city_level) {}
                        span #live.muted {}
                        a #lang-switch href={ "?lang=" (other.code()) } hreflang=(other.code()) {
                            (t.switch_to)
                        }
                    }
                }
                main { (body) }
                footer { (t.times_in) " " (ui.tz.name()) }
            }
        }
    };
    let mut response = Html(markup.into_string()).into_response();
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
