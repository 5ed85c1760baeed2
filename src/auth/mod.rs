//! Named users and what they may do: roles, passwords (argon2 PHC strings), browser sessions by
//! cookie, per-user API tokens, and the axum extractors write routes use to require a role.
//!
//! A JSON write route takes the role as its first extractor, so a caller without it is refused
//! (401 without a login, 403 below the role) before the body is read, and records `user.name`:
//!
//! ```ignore
//! async fn sprinkle(State(s): State<AppState>, Inspector(user): Inspector, Json(b): Json<Cmd>) { … }
//! ```
//!
//! A page's form takes [`User`] and its `csrf` field: `user.form_csrf(&form.csrf).require(role)?`.

mod extract;
pub mod i18n;
pub mod pages;
mod users;

pub use extract::{Admin, Inspector, User, Via, CSRF_HEADER, SESSION_COOKIE};
pub use users::{UserInfo, Users, SESSION_TTL_MS};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a user may do; each role may do everything the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads pages and the API.
    Viewer,
    /// Acknowledges alerts, orders, re-inspects, confirms notices, checks in on patrol.
    Inspector,
    /// The office: sets the city level, issues stop-work notices, manages users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Inspector, Role::Admin];
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Inspector => "inspector",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Role, AuthError> {
        Role::parse(s).ok_or_else(|| {
            AuthError::Invalid(format!("role `{s}`: use viewer, inspector or admin"))
        })
    }
}

#[derive(Debug, Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] crate::store::acting::ActingError),
    #[error("{0}")]
    Invalid(String),
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error("a user named `{0}` exists already")]
    Exists(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}
