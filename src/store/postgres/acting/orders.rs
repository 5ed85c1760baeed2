//! Orders and re-inspections in PostgreSQL. One open order per alert is the unique index
//! `orders_one_open`, so two instances ordering the same alert at once cannot both succeed.

use super::PgActing;
use crate::store::acting::statements as sql;
use crate::store::acting::{
    ActingError, NewOrder, NewReinspection, Order, OrderDb, ReinspectionResult,
};
use crate::store::StoreError;
use postgres::types::ToSql;
use postgres::Client;

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

impl OrderDb for PgActing {
    fn held_alerts(&self) -> Result<Vec<(i64, i64)>, ActingError> {
        self.with(|c| {
            let rows = c.query(sql::HELD_ALERTS, &[])?;
            let held = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get::<_, Option<i64>>(1)?.unwrap_or(0))))
                .collect::<Result<Vec<_>, postgres::Error>>()?;
            Ok(held)
        })
    }

    fn hold_of(&self, alert_id: i64) -> Result<Option<i64>, ActingError> {
        self.with(move |c| {
            Ok(c.query_opt(sql::HOLD_OF, &[&alert_id])?
                .map(|r| r.get::<_, Option<i64>>(0).unwrap_or(0)))
        })
    }

    fn insert_order(&self, o: &NewOrder<'_>) -> Result<Result<i64, i64>, ActingError> {
        let (alert_id, deadline, ts) = (o.alert_id, o.deadline_ts, o.ts);
        let (site, kind, note, by) = (
            o.site.to_string(),
            o.kind.name(),
            o.note.to_string(),
            o.by.to_string(),
        );
        self.with(move |c| {
            // The unique index, not a look first: two instances may order the alert at once.
            let inserted = c.query_one(
                sql::INSERT_ORDER,
                &[&alert_id, &site, &kind, &deadline, &note, &by, &ts],
            );
            match inserted {
                Ok(row) => Ok(Ok(row.try_get(0)?)),
                Err(e) if e.code().is_some_and(|s| s.code() == UNIQUE_VIOLATION) => {
                    let existing = c.query_opt(sql::OPEN_ORDER_OF_ALERT, &[&alert_id])?;
                    Ok(Err(existing.map_or(Ok(0), |r| r.try_get(0))?))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn set_response(
        &self,
        order_id: i64,
        response: &str,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError> {
        let (response, by) = (response.to_string(), by.to_string());
        self.with(move |c| {
            let n = c.execute(sql::SET_RESPONSE, &[&order_id, &response, &by, &ts])?;
            Ok(n > 0)
        })
    }

    fn insert_reinspection(
        &self,
        n: &NewReinspection<'_>,
        photo: Option<&str>,
        escalated_to: Option<&str>,
    ) -> Result<Option<i64>, ActingError> {
        let (order_id, result, ts) = (n.order_id, n.result, n.ts);
        let (by, note) = (n.by.to_string(), n.note.to_string());
        let photo = photo.map(str::to_string);
        let escalated_to = escalated_to.map(str::to_string);
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let change = match result {
                ReinspectionResult::Passed => sql::PASS_ORDER,
                ReinspectionResult::Failed => sql::FAIL_ORDER,
            };
            if tx.execute(change, &[&order_id])? == 0 {
                return Ok(None);
            }
            let id: i64 = tx
                .query_one(
                    sql::INSERT_REINSPECTION,
                    &[
                        &order_id,
                        &result.name(),
                        &by,
                        &ts,
                        &note,
                        &photo,
                        &escalated_to,
                    ],
                )?
                .try_get(0)?;
            tx.commit()?;
            Ok(Some(id))
        })
    }

    fn order(&self, id: i64) -> Result<Option<Order>, ActingError> {
        self.with(move |c| Ok(orders_where(c, sql::ORDER_BY_ID, &[&id])?.pop()))
    }

    fn orders_of_alert(&self, alert_id: i64) -> Result<Vec<Order>, ActingError> {
        self.with(move |c| orders_where(c, sql::ORDERS_OF_ALERT, &[&alert_id]))
    }

    fn orders_between(&self, from: i64, to: i64) -> Result<Vec<Order>, ActingError> {
        self.with(move |c| orders_where(c, sql::ORDERS_BETWEEN, &[&from, &to]))
    }
}

fn orders_where(
    c: &mut Client,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Order>, StoreError> {
    let mut orders = c
        .query(&sql::orders_where(clause), args)?
        .iter()
        .map(sql::order_of)
        .collect::<Result<Vec<_>, _>>()?;
    let checks = c.prepare(sql::REINSPECTIONS_OF_ORDER)?;
    for o in &mut orders {
        o.reinspections = c
            .query(&checks, &[&o.id])?
            .iter()
            .map(sql::reinspection_of)
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::acting::{ActingStore, OrderKind, OrderState};
    use std::sync::Arc;

    /// Two instances' stores on one database: an order given on one holds the alert on the
    /// other the moment it is stored (the shared holds read the rows when asked), and so does
    /// the pass that lifts it; one open order per alert across both.
    #[test]
    fn orders_given_on_one_instance_hold_the_alert_on_the_other() {
        let Some(pg) = dustwatch_testkit::Postgres::start() else {
            return;
        };
        let url = pg.database();
        let dir = tempfile::tempdir().expect("dir");
        let open = || {
            let db = Arc::new(PgActing::open(&url).expect("open"));
            ActingStore::with_db(db, dir.path()).expect("store")
        };
        let (a, b) = (open(), open());
        let order = NewOrder {
            alert_id: 7,
            site: "s1",
            kind: OrderKind::StopWork,
            deadline_ts: None,
            note: "",
            by: "li",
            ts: 1_000,
        };
        let o = b.issue_order(&order).expect("order on b");
        assert!(matches!(
            a.issue_order(&order),
            Err(ActingError::Invalid(_))
        ));
        assert!(
            !a.holds().is_held(7, 5_000),
            "the local holds know only this instance's orders"
        );
        let shared = a.shared_holds();
        assert!(
            shared.is_held(7, i64::MAX - 1),
            "b's order holds on a at once"
        );
        assert!(
            !shared.is_held(8, 5_000),
            "an alert without an order is not held"
        );
        let check = |result, ts| NewReinspection {
            order_id: o.id,
            result,
            by: "li",
            ts,
            note: "",
            photo: None,
            severity: "warning",
        };
        let failed = a
            .reinspect(&check(ReinspectionResult::Failed, 2_000))
            .expect("failed on a");
        assert_eq!(failed.escalated_to.as_deref(), Some("violation"));
        b.reinspect(&check(ReinspectionResult::Passed, 3_000))
            .expect("passed on b");
        assert!(matches!(
            a.reinspect(&check(ReinspectionResult::Passed, 3_100)),
            Err(ActingError::Invalid(_))
        ));
        assert!(shared.is_held(7, 2_999) && !shared.is_held(7, 3_000));
        let seen = a.order(o.id).expect("order");
        assert_eq!(
            (seen.state, seen.escalations, seen.reinspections.len()),
            (OrderState::Passed, 1, 2)
        );
    }
}
