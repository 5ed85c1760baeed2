//! Users, sessions and API tokens in PostgreSQL: a session opened on one instance is valid on
//! every other one on the database.

use super::PgActing;
use crate::store::acting::statements as sql;
use crate::store::acting::{ActingError, Credentials, StoredUser, UserDb};

impl UserDb for PgActing {
    fn insert_user(
        &self,
        name: &str,
        role: &str,
        phc: &str,
        created_ms: i64,
    ) -> Result<bool, ActingError> {
        let (name, role, phc) = (name.to_string(), role.to_string(), phc.to_string());
        self.with(move |c| {
            let n = c.execute(sql::INSERT_USER, &[&name, &role, &phc, &created_ms])?;
            Ok(n > 0)
        })
    }

    fn users(&self) -> Result<Vec<StoredUser>, ActingError> {
        self.with(|c| {
            // Byte-wise, as SQLite orders them, whatever the database's locale.
            let rows = c.query(&format!("{} ORDER BY name COLLATE \"C\"", sql::USERS), &[])?;
            let users = rows
                .iter()
                .map(sql::user_of)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(users)
        })
    }

    fn user_by_name(&self, name: &str) -> Result<Option<StoredUser>, ActingError> {
        let name = name.to_string();
        self.with(move |c| {
            let row = c.query_opt(sql::USER_BY_NAME, &[&name])?;
            Ok(row.as_ref().map(sql::user_of).transpose()?)
        })
    }

    fn credentials(&self, name: &str) -> Result<Option<Credentials>, ActingError> {
        let name = name.to_string();
        self.with(move |c| {
            let row = c.query_opt(sql::CREDENTIALS, &[&name])?;
            Ok(row.as_ref().map(sql::credentials_of).transpose()?)
        })
    }

    fn disable_user(&self, id: i64) -> Result<(), ActingError> {
        self.with(move |c| {
            let mut tx = c.transaction()?;
            for statement in sql::DISABLE_USER {
                tx.execute(statement, &[&id])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn insert_token(
        &self,
        hash: &str,
        user_id: i64,
        label: &str,
        created_ms: i64,
    ) -> Result<(), ActingError> {
        let (hash, label) = (hash.to_string(), label.to_string());
        self.with(move |c| {
            c.execute(sql::INSERT_TOKEN, &[&hash, &user_id, &label, &created_ms])?;
            Ok(())
        })
    }

    fn user_by_token(&self, hash: &str) -> Result<Option<StoredUser>, ActingError> {
        let hash = hash.to_string();
        self.with(move |c| {
            let row = c.query_opt(sql::USER_BY_TOKEN, &[&hash])?;
            Ok(row.as_ref().map(sql::user_of).transpose()?)
        })
    }

    fn insert_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        created_ms: i64,
        expires_ms: i64,
    ) -> Result<(), ActingError> {
        let (hash, csrf) = (hash.to_string(), csrf.to_string());
        self.with(move |c| {
            c.execute(sql::DROP_EXPIRED_SESSIONS, &[&created_ms])?;
            c.execute(
                sql::INSERT_SESSION,
                &[&hash, &user_id, &csrf, &created_ms, &expires_ms],
            )?;
            Ok(())
        })
    }

    fn session(
        &self,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<(StoredUser, String)>, ActingError> {
        let hash = hash.to_string();
        self.with(move |c| {
            let row = c.query_opt(sql::SESSION, &[&hash, &now_ms])?;
            let session = row
                .map(|r| Ok::<_, postgres::Error>((sql::user_of(&r)?, r.try_get(5)?)))
                .transpose()?;
            Ok(session)
        })
    }

    fn delete_session(&self, hash: &str) -> Result<(), ActingError> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.execute(sql::DELETE_SESSION, &[&hash])?;
            Ok(())
        })
    }
}
