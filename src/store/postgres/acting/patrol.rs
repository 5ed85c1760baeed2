//! Night-patrol check-ins in PostgreSQL.

use super::PgActing;
use crate::store::acting::statements as sql;
use crate::store::acting::{ActingError, Checkin, PatrolDb, PatrolResult};

impl PatrolDb for PgActing {
    fn insert_checkin(
        &self,
        night: &str,
        site: &str,
        result: PatrolResult,
        by: &str,
        ts: i64,
        note: &str,
    ) -> Result<i64, ActingError> {
        let (night, site, by, note) = (
            night.to_string(),
            site.to_string(),
            by.to_string(),
            note.to_string(),
        );
        self.with(move |c| {
            let row = c.query_one(
                sql::INSERT_CHECKIN,
                &[&night, &site, &result.name(), &by, &ts, &note],
            )?;
            Ok(row.try_get(0)?)
        })
    }

    fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError> {
        let night = night.to_string();
        self.with(move |c| {
            let rows = c.query(sql::CHECKINS_OF_NIGHT, &[&night])?;
            let checkins = rows
                .iter()
                .map(sql::checkin_of)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(checkins)
        })
    }
}
