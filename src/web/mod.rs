//! The HTTP server (axum): JSON API, Prometheus metrics, health, and the pages.

pub mod acting;
mod alerts;
mod alerts_api;
mod api;
mod charts;
mod command_texts;
mod commands;
mod dashboards;
mod evidence;
mod gases;
mod hj212_frames;
mod html;
pub mod i18n;
pub(crate) mod layout;
pub mod live;
mod map;
pub mod overview;
pub mod query;
mod rankings_text;
mod reports;
pub mod server;
pub mod token;
pub use reports::to_html as report_html;
mod site_page;
pub mod sites;

use crate::metrics::Metrics;
use crate::store::{StoreError, StoreReader};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use thiserror::Error;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub reader: Arc<dyn StoreReader>,
    pub metrics: Arc<Metrics>,
    pub offline_after_ms: i64,
    pub write_token: Arc<String>,
    pub rules: crate::rules::RulesHandle,
    /// Acknowledging alerts, here or on the instance that judges them.
    pub alert_actions: crate::rules::acks::AlertActions,
    pub publisher: crate::publish::Publisher,
    /// Commands to devices and their answers.
    pub commands: crate::commands::Commands,
    pub tz: chrono_tz::Tz,
    /// Limit lines of the active rule profile (GB 3095 where it sets none).
    pub limits: Arc<Vec<crate::charts::site_series::LimitLine>>,
    /// The live-update hub behind `/events`.
    pub live: live::LiveHub,
    /// Ingest's `max_future_s` in ms: a city level further ahead of the clock is refused.
    pub max_future_ms: i64,
    /// The pages' language when a request names none (`[http] language`).
    pub language: i18n::Lang,
    /// Users, orders, notices, patrol (`acting`).
    pub acting: acting::Acting,
}

/// Content-Security-Policy of every response without its own: same origin only, no inline
/// scripts, never framed. Pages set their own, allowing their scripts by nonce (`layout.rs`).
/// Inline styles are allowed (reports and SVG charts carry them; a style cannot run code).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response (pages, API, errors).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/sites", get(api::sites))
        .route("/api/sites/:id/series", get(api::series))
        .route("/api/hj212/frames", get(hj212_frames::list))
        .route("/api/alerts", get(alerts_api::list))
        .route("/api/alerts/:id", get(alerts_api::one))
        .route("/api/alerts/:id/ack", axum::routing::post(alerts_api::ack))
        .route(
            "/api/city/level",
            get(alerts_api::get_level).put(alerts_api::put_level),
        )
        .route(
            "/api/sites/:id/commands",
            get(commands::list).post(commands::send),
        )
        .route("/api/commands/:id", get(commands::one))
        .route("/api/rankings", get(reports::rankings))
        .route("/reports/daily/:date", get(reports::daily))
        .route("/rankings", get(reports::rankings_page))
        .route("/assets/:file", get(layout::asset))
        // Pages, charts, CSV and live updates.
        .route("/sites/:id", get(site_page::page))
        .route("/alerts", get(alerts::page))
        .route("/events", get(live::events))
        .route("/charts/sites/:file", get(charts::site_chart))
        .route("/charts/aqi/:file", get(charts::aqi_chart))
        .route("/api/sites/:id/series.csv", get(charts::series_csv))
        .route("/dashboards", get(dashboards::list))
        .route("/dashboards/:name", get(dashboards::page))
        .route("/dashboards/:name/:file", get(dashboards::panel))
        .merge(acting::routes())
        .layer(middleware::from_fn_with_state(state.clone(), html_errors))
        .layer(middleware::from_fn(i18n::remember))
        .with_state(state)
        .layer(middleware::from_fn(security_headers))
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Liveness: 200 `ok`, or 503 with the reason while the store cannot write (ingest waits and
/// acknowledges nothing meanwhile).
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.metrics.store_stall() {
        None => "ok\n".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store stalled: {why}; ingest waits and acknowledges nothing until it writes again\n"),
        )
            .into_response(),
    }
}

/// Errors a handler answers with; the message is meant for the caller.
#[derive(Debug, Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Logged in, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Query(#[from] query::QueryError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::BadRequest(_) | WebError::Query(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
        }
        (
            status,
            axum::Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response()
    }
}

/// A browser asking for a page gets an error page in its language; the API, metrics and streams
/// keep their JSON or text answers.
async fn html_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let machine = ["/api/", "/metrics", "/healthz", "/events", "/charts/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path.ends_with(".csv")
        || path.ends_with(".json");
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let lang = i18n::of_request(request.uri().query(), request.headers()).unwrap_or(state.language);
    let response = next.run(request).await;
    let status = response.status();
    if machine || !wants_html || !(status.is_client_error() && status != StatusCode::UNAUTHORIZED) {
        return response;
    }
    // The JSON error says why; an empty body (no such route) says nothing more than the status.
    let (_, body) = response.into_parts();
    let why = axum::body::to_bytes(body, 64 * 1024)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    let ui = layout::Ui::new(lang, &state);
    let t = ui.t();
    let title = match status {
        StatusCode::NOT_FOUND => t.not_found,
        StatusCode::BAD_REQUEST => t.bad_request,
        _ => t.error,
    };
    let body = maud::html! {
        h1 { (status.as_u16()) " " (title) }
        p { (why) }
        p { a href="/" { (t.back_home) } }
    };
    let mut page = layout::page(ui, title, layout::Nav::None, layout::Script::Static, body);
    *page.status_mut() = status;
    page
}

/// Run blocking store work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
}
