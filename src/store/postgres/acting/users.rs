//! Users, sessions and API tokens in PostgreSQL: a session opened on one instance is valid on
//! every other one on the database.

use super::PgActing;
use crate::store::acting::{ActingError, Credentials, StoredUser, UserDb};
use postgres::Row;

fn user_of(r: &Row) -> StoredUser {
    StoredUser {
        id: r.get(0),
        name: r.get(1),
        role: r.get(2),
        disabled: r.get(3),
        created_ms: r.get(4),
    }
}

const USER_COLS: &str = "id, name, role, disabled, created_ms";

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
            let n = c.execute(
                "INSERT INTO users (name, role, password, created_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &role, &phc, &created_ms],
            )?;
            Ok(n > 0)
        })
    }

    fn users(&self) -> Result<Vec<StoredUser>, ActingError> {
        self.with(|c| {
            let rows = c.query(
                &format!("SELECT {USER_COLS} FROM users ORDER BY name COLLATE \"C\""),
                &[],
            )?;
            Ok(rows.iter().map(user_of).collect())
        })
    }

    fn user_by_name(&self, name: &str) -> Result<Option<StoredUser>, ActingError> {
        let name = name.to_string();
        self.with(move |c| {
            let row = c.query_opt(
                &format!("SELECT {USER_COLS} FROM users WHERE name = $1"),
                &[&name],
            )?;
            Ok(row.as_ref().map(user_of))
        })
    }

    fn credentials(&self, name: &str) -> Result<Option<Credentials>, ActingError> {
        let name = name.to_string();
        self.with(move |c| {
            let row = c.query_opt(
                "SELECT id, password, disabled FROM users WHERE name = $1",
                &[&name],
            )?;
            Ok(row.map(|r| Credentials {
                id: r.get(0),
                phc: r.get(1),
                disabled: r.get(2),
            }))
        })
    }

    fn disable_user(&self, id: i64) -> Result<(), ActingError> {
        self.with(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("UPDATE users SET disabled = true WHERE id = $1", &[&id])?;
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM api_tokens WHERE user_id = $1", &[&id])?;
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
            c.execute(
                "INSERT INTO api_tokens (hash, user_id, label, created_ms) VALUES ($1, $2, $3, $4)",
                &[&hash, &user_id, &label, &created_ms],
            )?;
            Ok(())
        })
    }

    fn user_by_token(&self, hash: &str) -> Result<Option<StoredUser>, ActingError> {
        let hash = hash.to_string();
        self.with(move |c| {
            let row = c.query_opt(
                "SELECT u.id, u.name, u.role, u.disabled, u.created_ms FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.hash = $1 AND NOT u.disabled",
                &[&hash],
            )?;
            Ok(row.as_ref().map(user_of))
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
            c.execute("DELETE FROM sessions WHERE expires_ms < $1", &[&created_ms])?;
            c.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
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
            let row = c.query_opt(
                "SELECT u.id, u.name, u.role, u.disabled, u.created_ms, s.csrf FROM sessions s \
                 JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.expires_ms > $2 AND NOT u.disabled",
                &[&hash, &now_ms],
            )?;
            Ok(row.map(|r| (user_of(&r), r.get(5))))
        })
    }

    fn delete_session(&self, hash: &str) -> Result<(), ActingError> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = $1", &[&hash])?;
            Ok(())
        })
    }
}
