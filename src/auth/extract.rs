//! Who is asking: the axum extractors. A request is authenticated by `Authorization: Bearer`
//! (a user's API token, or the bootstrap write token) or by the session cookie. A session may
//! write only with its CSRF token: the `X-CSRF-Token` header (scripts) or the form's `csrf`
//! field (pages, checked by [`User::form_csrf`]); the cookie is SameSite=Strict besides.

use super::{Role, UserInfo};
use crate::web::{blocking, AppState, WebError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};

pub const SESSION_COOKIE: &str = "dw_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The session's CSRF token for the page's scripts (readable by them; worthless without the
/// HttpOnly session cookie).
pub const CSRF_COOKIE: &str = "dw_csrf";

/// How the request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The browser session; `csrf_ok` once its token was shown (always for reads).
    Session { csrf: String, csrf_ok: bool },
    /// A user's API token.
    Token,
    /// The shared write token (`[http] write_token`): admin-equivalent, for the first admin and
    /// the existing scripts.
    Bootstrap,
}

/// The authenticated user. Rejects with 401 when there is none.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// The user name the bootstrap token acts as.
pub const BOOTSTRAP: &str = "bootstrap";

impl User {
    /// The role (or a higher one) and, for a session writing, the CSRF token: else 403.
    pub fn require(&self, role: Role) -> Result<&User, WebError> {
        if let Via::Session { csrf_ok: false, .. } = self.via {
            return Err(WebError::Forbidden(
                "the form's CSRF token is missing or wrong; reload the page".into(),
            ));
        }
        if self.role < role {
            return Err(WebError::Forbidden(format!(
                "`{}` is a {}; this needs a {} or higher",
                self.name,
                self.role.name(),
                role.name()
            )));
        }
        Ok(self)
    }

    /// A page's form carried this CSRF token.
    pub fn form_csrf(mut self, given: &str) -> User {
        if let Via::Session { csrf, csrf_ok } = &mut self.via {
            *csrf_ok |= same(csrf.as_bytes(), given.as_bytes());
        }
        self
    }

    /// The session's CSRF token, for forms (none for token callers).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            _ => "",
        }
    }
}

/// Constant-time comparison (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && !a.is_empty() && a.iter().zip(b).fold(0u8, |x, (p, q)| x | (p ^ q)) == 0
}

pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

fn unauthorized() -> WebError {
    WebError::Unauthorized(
        "log in (/login), or send `Authorization: Bearer <token>` (`dustwatch user token`)".into(),
    )
}

/// A credential that matched nobody: counted (someone may be guessing).
fn bad_credentials(state: &AppState) -> WebError {
    state
        .metrics
        .auth
        .bad_credentials
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    unauthorized()
}

#[axum::async_trait]
impl FromRequestParts<AppState> for User {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<User, WebError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or("").trim().to_string())
            .filter(|t| !t.is_empty());
        if let Some(token) = bearer {
            if same(token.as_bytes(), state.write_token.as_bytes()) {
                return Ok(User {
                    name: BOOTSTRAP.into(),
                    role: Role::Admin,
                    via: Via::Bootstrap,
                });
            }
            let users = state.acting.users.clone();
            let found: Option<UserInfo> = blocking(move || {
                users
                    .by_token(&token)
                    .map_err(|e| WebError::Internal(e.to_string()))
            })
            .await?;
            return found
                .map(|u| User {
                    name: u.name,
                    role: u.role,
                    via: Via::Token,
                })
                .ok_or_else(|| bad_credentials(state));
        }
        let Some(session) = session_cookie(&parts.headers) else {
            return Err(unauthorized());
        };
        let users = state.acting.users.clone();
        let found = blocking(move || {
            users
                .by_session(&session)
                .map_err(|e| WebError::Internal(e.to_string()))
        })
        .await?;
        let (u, csrf) = found.ok_or_else(|| bad_credentials(state))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let header_ok = parts
            .headers
            .get(CSRF_HEADER)
            .is_some_and(|v| same(v.as_bytes(), csrf.as_bytes()));
        Ok(User {
            name: u.name,
            role: u.role,
            via: Via::Session {
                csrf,
                csrf_ok: safe || header_ok,
            },
        })
    }
}

/// A user who may act in the field (inspector or admin); 401 without login, 403 below.
pub struct Inspector(pub User);

/// The office (admin); 401 without login, 403 below.
pub struct Admin(pub User);

#[axum::async_trait]
impl FromRequestParts<AppState> for Inspector {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let u = User::from_request_parts(parts, state).await?;
        u.require(Role::Inspector)?;
        Ok(Inspector(u))
    }
}

#[axum::async_trait]
impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let u = User::from_request_parts(parts, state).await?;
        u.require(Role::Admin)?;
        Ok(Admin(u))
    }
}
