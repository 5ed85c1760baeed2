//! `GET/POST /login` and `POST /logout`: the browser's session. The session cookie is HttpOnly,
//! SameSite=Strict, Secure when configured (`[http] secure_cookies`) or when a TLS proxy says
//! the request came over HTTPS; the CSRF cookie beside it is readable by the page's scripts.

use super::extract::{session_cookie, CSRF_COOKIE, SESSION_COOKIE};
use super::users::SESSION_TTL_MS;
use super::{i18n, User};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Nav, Script, Ui};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dustwatch_protocol::time::SECOND;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Next {
    pub next: Option<String>,
}

/// Only a path on this site (no `//host`, no scheme): never an open redirect.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

fn form(ui: Ui, next: &str, error: bool) -> Response {
    let w = i18n::words(ui.lang);
    let body = html! {
        h1 { (w.login) }
        @if error { p.error role="alert" { (w.wrong) } }
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            p { label { (w.name) br; input name="name" required autocomplete="username" maxlength="64"; } }
            p { label { (w.password) br; input name="password" type="password" required autocomplete="current-password"; } }
            p { button type="submit" { (w.submit) } }
        }
    };
    layout::page(ui, w.login, Nav::None, Script::Static, body)
}

pub async fn login_page(
    State(state): State<AppState>,
    lang: Lang,
    Query(q): Query<Next>,
) -> Response {
    form(Ui::new(lang, &state), &local(q.next.as_deref()), false)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.acting.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn cookie(name: &str, value: &str, max_age_s: i64, http_only: bool, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age_s}; SameSite=Strict{}{}",
        if http_only { "; HttpOnly" } else { "" },
        if secure { "; Secure" } else { "" }
    )
}

fn with_cookies(mut response: Response, cookies: [String; 2]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

pub async fn login(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let users = state.acting.users.clone();
    let (name, password) = (f.name.trim().to_string(), f.password);
    let opened = blocking(move || {
        users
            .login(&name, &password)
            .map_err(|e| WebError::Internal(e.to_string()))
    })
    .await?;
    let next = local(f.next.as_deref());
    let counter = if opened.is_some() {
        &state.metrics.auth.logins
    } else {
        &state.metrics.auth.login_failures
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some((session, csrf)) = opened else {
        let mut page = form(Ui::new(lang, &state), &next, true);
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(page);
    };
    let secure = secure(&state, &headers);
    let age = SESSION_TTL_MS / SECOND;
    Ok(with_cookies(
        Redirect::to(&next).into_response(),
        [
            cookie(SESSION_COOKIE, &session, age, true, secure),
            cookie(CSRF_COOKIE, &csrf, age, false, secure),
        ],
    ))
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Result<Response, WebError> {
    user.form_csrf(&f.csrf).require(super::Role::Viewer)?;
    if let Some(session) = session_cookie(&headers) {
        let users = state.acting.users.clone();
        blocking(move || {
            users
                .logout(&session)
                .map_err(|e| WebError::Internal(e.to_string()))
        })
        .await?;
    }
    let secure = secure(&state, &headers);
    Ok(with_cookies(
        Redirect::to("/login").into_response(),
        [
            cookie(SESSION_COOKIE, "", 0, true, secure),
            cookie(CSRF_COOKIE, "", 0, false, secure),
        ],
    ))
}

/// A small "signed in as … [log out]" bar for the pages of this feature.
pub fn whoami(lang: Lang, user: &User) -> maud::Markup {
    let w = i18n::words(lang);
    html! {
        form.whoami method="post" action="/logout" {
            span.muted { (w.signed_in_as) ": " (user.name) " (" (w.role(user.role)) ") " }
            input type="hidden" name="csrf" value=(user.csrf());
            button type="submit" { (w.logout) }
        }
    }
}
