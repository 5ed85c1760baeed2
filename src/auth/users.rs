//! Users, sessions and API tokens in the store. Passwords are argon2id PHC strings; session ids
//! and API tokens are 256 random bits given to the client once and stored only as SHA-256
//! hashes, so a copy of the database lets nobody in.

use super::{AuthError, Role};
use crate::store::acting::{ActingStore, StoredUser};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use dustwatch_protocol::time::HOUR;
use serde::Serialize;
use std::sync::Arc;

/// Longer passwords are refused unhashed: hashing megabytes per request would be a cheap way
/// to load the server.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A browser session lasts this long after login.
pub const SESSION_TTL_MS: i64 = 12 * HOUR;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_ms: i64,
}

/// The users' side of the store.
#[derive(Clone)]
pub struct Users {
    store: Arc<ActingStore>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// 256 bits from the OS random source, as 64 hex digits.
pub fn random_hex() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(AuthError::Random)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn check_name(name: &str) -> Result<(), AuthError> {
    let chars = name.chars().count();
    if chars == 0 || chars > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AuthError::Invalid(
            "a user name is 1 to 64 characters without spaces".into(),
        ));
    }
    Ok(())
}

fn user_of(u: StoredUser) -> UserInfo {
    UserInfo {
        id: u.id,
        name: u.name,
        // An unknown role in the table reads as the least one.
        role: Role::parse(&u.role).unwrap_or(Role::Viewer),
        disabled: u.disabled,
        created_ms: u.created_ms,
    }
}

impl Users {
    pub fn new(store: Arc<ActingStore>) -> Users {
        Users { store }
    }

    /// Add a user. Passwords are at least 8 characters.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<UserInfo, AuthError> {
        check_name(name)?;
        if password.chars().count() < 8 || password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::Invalid(format!(
                "a password is at least 8 characters and at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        let phc = hash_password(password)?;
        if !self
            .store
            .db()
            .insert_user(name, role.name(), &phc, now_ms())?
        {
            return Err(AuthError::Exists(name.to_string()));
        }
        self.by_name(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<UserInfo>, AuthError> {
        Ok(self.store.db().users()?.into_iter().map(user_of).collect())
    }

    pub fn by_name(&self, name: &str) -> Result<Option<UserInfo>, AuthError> {
        Ok(self.store.db().user_by_name(name)?.map(user_of))
    }

    /// Disable a user: their sessions and tokens stop working at once.
    pub fn disable(&self, name: &str) -> Result<UserInfo, AuthError> {
        let user = self
            .by_name(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
        self.store.db().disable_user(user.id)?;
        Ok(UserInfo {
            disabled: true,
            ..user
        })
    }

    /// Issue an API token for a user; the token is returned once and stored hashed.
    pub fn issue_token(&self, name: &str, label: &str) -> Result<String, AuthError> {
        let user = self
            .by_name(name)?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
        let token = format!("dwt_{}", random_hex()?);
        self.store
            .db()
            .insert_token(&sha256(&token), user.id, label, now_ms())?;
        Ok(token)
    }

    /// The enabled user an API token belongs to.
    pub fn by_token(&self, token: &str) -> Result<Option<UserInfo>, AuthError> {
        Ok(self.store.db().user_by_token(&sha256(token))?.map(user_of))
    }

    /// Check a password; on success open a session: (session id for the cookie, CSRF token).
    /// None for a wrong name, wrong password or a disabled user alike.
    pub fn login(&self, name: &str, password: &str) -> Result<Option<(String, String)>, AuthError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(None);
        }
        let Some(found) = self.store.db().credentials(name)? else {
            // Hash anyway, so an unknown name takes as long as a wrong password.
            let _ = hash_password(password);
            return Ok(None);
        };
        let parsed = PasswordHash::new(&found.phc).map_err(|e| AuthError::Hash(e.to_string()))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if !ok || found.disabled {
            return Ok(None);
        }
        let session = random_hex()?;
        let csrf = random_hex()?;
        let now = now_ms();
        self.store.db().insert_session(
            &sha256(&session),
            found.id,
            &csrf,
            now,
            now + SESSION_TTL_MS,
        )?;
        Ok(Some((session, csrf)))
    }

    /// The enabled user of a live session, and the session's CSRF token.
    pub fn by_session(&self, session: &str) -> Result<Option<(UserInfo, String)>, AuthError> {
        Ok(self
            .store
            .db()
            .session(&sha256(session), now_ms())?
            .map(|(u, csrf)| (user_of(u), csrf)))
    }

    pub fn logout(&self, session: &str) -> Result<(), AuthError> {
        self.store.db().delete_session(&sha256(session))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_sessions_and_tokens() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ActingStore::open(dir.path()).expect("store"));
        passwords_sessions_and_tokens_in(Users::new(store));
    }

    #[test]
    fn passwords_sessions_and_tokens_on_postgres() {
        let Some(pg) = dustwatch_testkit::Postgres::start() else {
            return;
        };
        let dir = tempfile::tempdir().expect("dir");
        let db = crate::store::postgres::PgActing::open(&pg.database()).expect("postgres");
        let store = ActingStore::with_db(Arc::new(db), dir.path()).expect("store");
        passwords_sessions_and_tokens_in(Users::new(Arc::new(store)));
    }

    fn passwords_sessions_and_tokens_in(users: Users) {
        let u = users
            .add("li.wei", Role::Inspector, "correct horse")
            .expect("add");
        assert_eq!(u.role, Role::Inspector);
        assert!(matches!(
            users.add("li.wei", Role::Viewer, "another one"),
            Err(AuthError::Exists(_))
        ));
        assert!(matches!(
            users.add("short", Role::Viewer, "1234567"),
            Err(AuthError::Invalid(_))
        ));
        // Stored as an argon2 PHC string, never the password.
        let phc = users
            .store
            .db()
            .credentials("li.wei")
            .expect("lookup")
            .expect("stored")
            .phc;
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(users
            .login("li.wei", "wrong password")
            .expect("login")
            .is_none());
        assert!(users
            .login("nobody", "correct horse")
            .expect("login")
            .is_none());
        let (session, csrf) = users
            .login("li.wei", "correct horse")
            .expect("login")
            .expect("right password");
        let (who, c) = users.by_session(&session).expect("lookup").expect("live");
        assert_eq!((who.name.as_str(), c.as_str()), ("li.wei", csrf.as_str()));
        let token = users.issue_token("li.wei", "cli").expect("token");
        assert_eq!(
            users.by_token(&token).expect("lookup").map(|u| u.name),
            Some("li.wei".to_string())
        );
        assert!(users.by_token("dwt_guess").expect("lookup").is_none());
        // Disabling ends the session and the token.
        users.disable("li.wei").expect("disable");
        assert!(users.by_session(&session).expect("lookup").is_none());
        assert!(users.by_token(&token).expect("lookup").is_none());
        assert!(users
            .login("li.wei", "correct horse")
            .expect("login")
            .is_none());
        users.add("wang", Role::Viewer, "viewer-pass").expect("add");
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            users.add("zhao", Role::Viewer, &huge),
            Err(AuthError::Invalid(_))
        ));
        assert!(users.login("wang", &huge).expect("login").is_none());
        let (session, _) = users
            .login("wang", "viewer-pass")
            .expect("login")
            .expect("ok");
        users.logout(&session).expect("logout");
        assert!(users.by_session(&session).expect("lookup").is_none());
    }
}
