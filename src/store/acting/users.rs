//! The rows of users, browser sessions and API tokens (`crate::auth` owns their logic: hashing,
//! checks, roles). Secrets arrive here already hashed.

use super::statements as sql;
use super::{ActingError, SqliteActing};
use crate::store::sql::sqlite;
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

impl UserDb for SqliteActing {
    fn insert_user(
        &self,
        name: &str,
        role: &str,
        phc: &str,
        created_ms: i64,
    ) -> Result<bool, ActingError> {
        let n = self.conn().execute(
            &sqlite(sql::INSERT_USER),
            params![name, role, phc, created_ms],
        )?;
        Ok(n > 0)
    }

    fn users(&self) -> Result<Vec<StoredUser>, ActingError> {
        let conn = self.conn();
        // SQLite's default collation is byte-wise already.
        let mut st = conn.prepare(&format!("{} ORDER BY name", sql::USERS))?;
        let users = st
            .query_map([], |r| sql::user_of(r))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(users)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<StoredUser>, ActingError> {
        Ok(self
            .conn()
            .query_row(&sqlite(sql::USER_BY_NAME), [name], |r| sql::user_of(r))
            .optional()?)
    }

    fn credentials(&self, name: &str) -> Result<Option<Credentials>, ActingError> {
        Ok(self
            .conn()
            .query_row(&sqlite(sql::CREDENTIALS), [name], |r| {
                sql::credentials_of(r)
            })
            .optional()?)
    }

    fn disable_user(&self, id: i64) -> Result<(), ActingError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for statement in sql::DISABLE_USER {
            tx.execute(&sqlite(statement), [id])?;
        }
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
            &sqlite(sql::INSERT_TOKEN),
            params![hash, user_id, label, created_ms],
        )?;
        Ok(())
    }

    fn user_by_token(&self, hash: &str) -> Result<Option<StoredUser>, ActingError> {
        Ok(self
            .conn()
            .query_row(&sqlite(sql::USER_BY_TOKEN), [hash], |r| sql::user_of(r))
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
        conn.execute(&sqlite(sql::DROP_EXPIRED_SESSIONS), [created_ms])?;
        conn.execute(
            &sqlite(sql::INSERT_SESSION),
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
            .query_row(&sqlite(sql::SESSION), params![hash, now_ms], |r| {
                Ok((sql::user_of(r)?, r.get::<_, String>(5)?))
            })
            .optional()?)
    }

    fn delete_session(&self, hash: &str) -> Result<(), ActingError> {
        self.conn().execute(&sqlite(sql::DELETE_SESSION), [hash])?;
        Ok(())
    }
}
