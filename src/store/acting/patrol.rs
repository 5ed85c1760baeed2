//! Night-patrol check-ins: per night (the local date the night starts on) and site, what the
//! inspector found, when and who.

use super::{ActingError, ActingStore, SqliteActing};
use rusqlite::params;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PatrolResult {
    Working,
    NotWorking,
    Rectified,
}

impl PatrolResult {
    pub const ALL: [PatrolResult; 3] = [
        PatrolResult::Working,
        PatrolResult::NotWorking,
        PatrolResult::Rectified,
    ];
    pub fn name(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<PatrolResult> {
        s.parse().ok()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Checkin {
    pub id: i64,
    /// `YYYY-MM-DD`, the local date the night starts on.
    pub night: String,
    pub site: String,
    pub result: PatrolResult,
    pub by: String,
    pub ts: i64,
    pub note: String,
}

/// The rows of the night patrol.
pub trait PatrolDb: Send + Sync {
    /// Store a check-in; its id.
    fn insert_checkin(
        &self,
        night: &str,
        site: &str,
        result: PatrolResult,
        by: &str,
        ts: i64,
        note: &str,
    ) -> Result<i64, ActingError>;
    /// A night's check-ins, in the order they were made.
    fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError>;
}

impl ActingStore {
    pub fn check_in(
        &self,
        night: &str,
        site: &str,
        result: PatrolResult,
        by: &str,
        ts: i64,
        note: &str,
    ) -> Result<Checkin, ActingError> {
        let id = self.db.insert_checkin(night, site, result, by, ts, note)?;
        Ok(Checkin {
            id,
            night: night.to_string(),
            site: site.to_string(),
            result,
            by: by.to_string(),
            ts,
            note: note.to_string(),
        })
    }

    /// A night's check-ins, in the order they were made.
    pub fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError> {
        self.db.checkins(night)
    }
}

impl PatrolDb for SqliteActing {
    fn insert_checkin(
        &self,
        night: &str,
        site: &str,
        result: PatrolResult,
        by: &str,
        ts: i64,
        note: &str,
    ) -> Result<i64, ActingError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO patrol_checkins (night, site, result, by_user, ts, note) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![night, site, result.name(), by, ts, note],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, night, site, result, by_user, ts, note FROM patrol_checkins \
             WHERE night = ?1 ORDER BY id LIMIT 10000",
        )?;
        let rows = st
            .query_map([night], |r| {
                let result: String = r.get(3)?;
                Ok(Checkin {
                    id: r.get(0)?,
                    night: r.get(1)?,
                    site: r.get(2)?,
                    result: PatrolResult::parse(&result).unwrap_or(PatrolResult::Working),
                    by: r.get(4)?,
                    ts: r.get(5)?,
                    note: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
