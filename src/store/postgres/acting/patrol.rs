//! Night-patrol check-ins in PostgreSQL.

use super::PgActing;
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
                "INSERT INTO patrol_checkins (night, site, result, by_user, ts, note) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&night, &site, &result.name(), &by, &ts, &note],
            )?;
            Ok(row.get(0))
        })
    }

    fn checkins(&self, night: &str) -> Result<Vec<Checkin>, ActingError> {
        let night = night.to_string();
        self.with(move |c| {
            let rows = c.query(
                "SELECT id, night, site, result, by_user, ts, note FROM patrol_checkins \
                 WHERE night = $1 ORDER BY id LIMIT 10000",
                &[&night],
            )?;
            Ok(rows
                .iter()
                .map(|r| Checkin {
                    id: r.get(0),
                    night: r.get(1),
                    site: r.get(2),
                    result: PatrolResult::parse(r.get(3)).unwrap_or(PatrolResult::Working),
                    by: r.get(4),
                    ts: r.get(5),
                    note: r.get(6),
                })
                .collect())
        })
    }
}
