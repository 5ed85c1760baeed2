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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = AuthError,
    parse_err_fn = unknown_role
)]
pub enum Role {
    /// Reads pages and the API.
    Viewer,
    /// Acknowledges alerts, orders, re-inspects, confirms notices, checks in on patrol.
    Inspector,
    /// The office: sets the city level, issues stop-work notices, manages users.
    Admin,
}

fn unknown_role(s: &str) -> AuthError {
    AuthError::Invalid(format!("role `{s}`: use viewer, inspector or admin"))
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Inspector, Role::Admin];
    pub fn name(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Role> {
        s.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn role_text_and_serde_agree_and_unknown_roles_say_what_to_use() {
        for &r in Role::VARIANTS {
            let json = serde_json::to_value(r).expect("a unit variant serialises");
            assert_eq!(json, serde_json::Value::String(r.name().into()));
            assert_eq!(r.name().parse::<Role>().ok(), Some(r));
        }
        let e = "root".parse::<Role>().expect_err("no such role");
        assert_eq!(e.to_string(), "role `root`: use viewer, inspector or admin");
    }
}
