//! Night-patrol check-ins: per night (the local date the night starts on) and site, what the
//! inspector found, when and who.

use super::statements as sql;
use super::{ActingError, ActingStore, SqliteActing};
use crate::store::sql::sqlite;
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
        let id = self.conn().query_row(
            &sqlite(sql::INSERT_CHECKIN),
            params![night, site, result.name(), by, ts, note],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&sqlite(sql::CHECKINS_OF_NIGHT))?;
        let rows = st
            .query_map([night], |r| sql::checkin_of(r))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
