//! The rows of users, browser sessions and API tokens (`crate::auth` owns their logic: hashing,
//! checks, roles). Secrets arrive here already hashed.

use super::{ActingError, SqliteActing};
use rusqlite::{params, OptionalExtension};

/// A user as stored; the role is its name (`crate::auth::Role` reads it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub created_ms: i64,
}

/// A user's password (an argon2 PHC string) and whether they may log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: i64,
    pub phc: String,
    pub disabled: bool,
}

pub trait UserDb: Send + Sync {
    /// Store a new user; false when the name is taken.
    fn insert_user(
        &self,
        name: &str,
        role: &str,
        phc: &str,
        created_ms: i64,
    ) -> Result<bool, ActingError>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<StoredUser>, ActingError>;
    fn user_by_name(&self, name: &str) -> Result<Option<StoredUser>, ActingError>;
    fn credentials(&self, name: &str) -> Result<Option<Credentials>, ActingError>;
    /// Disable a user and drop their sessions and tokens, in one transaction.
    fn disable_user(&self, id: i64) -> Result<(), ActingError>;
    fn insert_token(
        &self,
        hash: &str,
        user_id: i64,
        label: &str,
        created_ms: i64,
    ) -> Result<(), ActingError>;
    /// The enabled user of a token hash.
    fn user_by_token(&self, hash: &str) -> Result<Option<StoredUser>, ActingError>;
    /// Store a session, dropping those expired by `created_ms` (the table stays bounded).
    fn insert_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        created_ms: i64,
        expires_ms: i64,
    ) -> Result<(), ActingError>;
    /// The enabled user of a session live at `now_ms`, and its CSRF token.
    fn session(&self, hash: &str, now_ms: i64)
        -> Result<Option<(StoredUser, String)>, ActingError>;
    fn delete_session(&self, hash: &str) -> Result<(), ActingError>;
}

fn user_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredUser> {
    Ok(StoredUser {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        disabled: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

const USER_COLS: &str = "id, name, role, disabled, created_ms";

impl UserDb for SqliteActing {
    fn insert_user(
        &self,
        name: &str,
        role: &str,
        phc: &str,
        created_ms: i64,
    ) -> Result<bool, ActingError> {
        let n = self.conn().execute(
            "INSERT INTO users (name, role, password, created_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO NOTHING",
            params![name, role, phc, created_ms],
        )?;
        Ok(n > 0)
    }

    fn users(&self) -> Result<Vec<StoredUser>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))?;
        let users = st.query_map([], user_of)?.collect::<Result<Vec<_>, _>>()?;
        Ok(users)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<StoredUser>, ActingError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE name = ?1"),
                [name],
                user_of,
            )
            .optional()?)
    }

    fn credentials(&self, name: &str) -> Result<Option<Credentials>, ActingError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, password, disabled FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(Credentials {
                        id: r.get(0)?,
                        phc: r.get(1)?,
                        disabled: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn disable_user(&self, id: i64) -> Result<(), ActingError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        tx.execute("DELETE FROM api_tokens WHERE user_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn insert_token(
        &self,
        hash: &str,
        user_id: i64,
        label: &str,
        created_ms: i64,
    ) -> Result<(), ActingError> {
        self.conn().execute(
            "INSERT INTO api_tokens (hash, user_id, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash, user_id, label, created_ms],
        )?;
        Ok(())
    }

    fn user_by_token(&self, hash: &str) -> Result<Option<StoredUser>, ActingError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.id, u.name, u.role, u.disabled, u.created_ms FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.hash = ?1 AND u.disabled = 0",
                [hash],
                user_of,
            )
            .optional()?)
    }

    fn insert_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        created_ms: i64,
        expires_ms: i64,
    ) -> Result<(), ActingError> {
        let conn = self.conn();
        conn.execute("DELETE FROM sessions WHERE expires_ms < ?1", [created_ms])?;
        conn.execute(
            "INSERT INTO sessions (id_hash, user_id, csrf, created_ms, expires_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, user_id, csrf, created_ms, expires_ms],
        )?;
        Ok(())
    }

    fn session(
        &self,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<(StoredUser, String)>, ActingError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.id, u.name, u.role, u.disabled, u.created_ms, s.csrf FROM sessions s \
                 JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = ?1 AND s.expires_ms > ?2 AND u.disabled = 0",
                params![hash, now_ms],
                |r| Ok((user_of(r)?, r.get::<_, String>(5)?)),
            )
            .optional()?)
    }

    fn delete_session(&self, hash: &str) -> Result<(), ActingError> {
        self.conn()
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [hash])?;
        Ok(())
    }
}
