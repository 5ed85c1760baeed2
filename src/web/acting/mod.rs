//! Acting on alerts over HTTP: orders and re-inspections, stop-work notices, the night patrol,
//! user management, and the login pages' routes. Every write needs a role ([`crate::auth`]) and
//! records who did it.

pub mod i18n;
mod notices;
mod order_texts;
mod orders;
mod orders_page;
pub mod patrol;
pub mod report;
mod users_api;

use super::{AppState, WebError};
use crate::auth::{self, Users};
use crate::rules::profile::Profile;
use crate::store::acting::ActingError;
use crate::store::acting::ActingStore;
use axum::routing::{get, post};
use axum::Router;
use dustwatch_protocol::{Level, Phase, SiteKind};
use std::sync::Arc;

/// What the web needs to act: the store, the users, the profile's restrictions.
#[derive(Clone)]
pub struct Acting {
    pub store: Arc<ActingStore>,
    pub users: Users,
    pub duty: Arc<Duty>,
    /// Session cookies carry `Secure` (`[http] secure_cookies`, for a TLS proxy in front).
    pub secure_cookies: bool,
}

impl Acting {
    pub fn new(store: Arc<ActingStore>, profile: &Profile, secure_cookies: bool) -> Acting {
        Acting {
            users: Users::new(store.clone()),
            store,
            duty: Arc::new(Duty::from_profile(profile)),
            secure_cookies,
        }
    }
}

/// Which work a city level stops where (the profile's restriction).
#[derive(Debug, Clone, Default)]
pub struct Duty {
    pub earthwork_from: Option<Level>,
    pub all_work_from: Option<Level>,
    pub earthwork_phases: Vec<Phase>,
}

impl Duty {
    pub fn from_profile(p: &Profile) -> Duty {
        let r = p.restriction.as_ref();
        Duty {
            earthwork_from: r.map(|r| r.earthwork_from),
            all_work_from: r.map(|r| r.all_work_from),
            earthwork_phases: p.activity.earthwork_phases.clone(),
        }
    }

    /// The work `level` stops on a site: `all`, `earthwork`, or none. Reference stations do no
    /// work.
    pub fn stops(&self, level: Level, kind: SiteKind, phase: Phase) -> Option<&'static str> {
        if kind == SiteKind::Reference || level == Level::None {
            return None;
        }
        if self.all_work_from.is_some_and(|f| level >= f) {
            return Some("all");
        }
        if self.earthwork_from.is_some_and(|f| level >= f) && self.earthwork_phases.contains(&phase)
        {
            return Some("earthwork");
        }
        None
    }
}

impl From<ActingError> for WebError {
    fn from(e: ActingError) -> WebError {
        match e {
            ActingError::NotFound(s) => WebError::NotFound(s),
            ActingError::Invalid(s) => WebError::BadRequest(s),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<auth::AuthError> for WebError {
    fn from(e: auth::AuthError) -> WebError {
        match e {
            auth::AuthError::Invalid(s) => WebError::BadRequest(s),
            auth::AuthError::Exists(_) => WebError::BadRequest(e.to_string()),
            auth::AuthError::NoSuchUser(_) => WebError::NotFound(e.to_string()),
            other => WebError::Internal(other.to_string()),
        }
    }
}

/// The feature's routes, merged into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            get(auth::pages::login_page).post(auth::pages::login),
        )
        .route("/logout", post(auth::pages::logout))
        .route("/api/users", get(users_api::list).post(users_api::add))
        .route("/api/users/:name/disable", post(users_api::disable))
        .route("/api/users/:name/tokens", post(users_api::token))
        .route(
            "/api/alerts/:id/orders",
            get(orders::list).post(orders::issue),
        )
        .route("/api/orders/:id/response", post(orders::respond))
        .route("/api/orders/:id/reinspections", post(orders::reinspect))
        .route("/alerts/:id/act", get(orders_page::page))
        .route("/alerts/:id/act/order", post(orders_page::issue_form))
        .route("/alerts/:id/act/response", post(orders_page::respond_form))
        .route(
            "/alerts/:id/act/reinspect",
            post(orders_page::reinspect_form).layer(axum::extract::DefaultBodyLimit::max(
                orders::PHOTO_MAX_BYTES + 64 * 1024,
            )),
        )
        .route("/photos/:file", get(orders::photo))
        .route("/api/notices", get(notices::list).post(notices::issue))
        .route("/api/notices/:id/receipts/:site", post(notices::confirm))
        .route("/notices", get(notices::page).post(notices::issue_form))
        .route("/notices/:id/confirm/:site", post(notices::confirm_form))
        .route("/patrol", get(patrol::page))
        .route("/patrol/:site", post(patrol::check_in_form))
        .route("/api/patrol", get(patrol::list))
        .route("/api/patrol/:site", post(patrol::check_in))
}

/// The link from an alert's row to its action page (orders, re-inspections).
pub fn act_link(lang: super::i18n::Lang, alert_id: i64) -> String {
    maud::html! { " " a.act href={"/alerts/" (alert_id) "/act"} { (i18n::words(lang).act_title) } }
        .into_string()
}

/// The overview's links to the office's actions, on every overview.
pub fn overview_links(lang: super::i18n::Lang) -> String {
    let w = i18n::words(lang);
    maud::html! {
        p.actions.noprint {
            a href="/notices" { (w.notices) } " · " a href="/patrol" { (w.patrol) } " · "
            a href="/login" { (crate::auth::i18n::words(lang).login) }
        }
    }
    .into_string()
}

/// Now, Unix ms (wall clock).
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A page that needs a login sends a browser to `/login` first.
fn to_login(path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let next: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    axum::response::Redirect::to(&format!("/login?next={next}")).into_response()
}
