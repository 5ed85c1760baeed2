//! Orders and re-inspections in PostgreSQL. One open order per alert is the unique index
//! `orders_one_open`, so two instances ordering the same alert at once cannot both succeed.

use super::{u32_of, PgActing};
use crate::store::acting::orders::{HOLD_OF, ORDER_COLS};
use crate::store::acting::{
    ActingError, NewOrder, NewReinspection, Order, OrderDb, OrderKind, OrderState, Reinspection,
    ReinspectionResult,
};
use crate::store::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Row};

fn order_of(r: &Row) -> Order {
    Order {
        id: r.get(0),
        alert_id: r.get(1),
        site: r.get(2),
        kind: OrderKind::parse(r.get(3)).unwrap_or(OrderKind::Rectify),
        deadline_ts: r.get(4),
        note: r.get(5),
        issued_by: r.get(6),
        issued_ts: r.get(7),
        state: OrderState::parse(r.get(8)),
        escalations: u32_of(r.get(9)),
        response: r.get(10),
        response_by: r.get(11),
        response_ts: r.get(12),
        reinspections: Vec::new(),
    }
}

fn reinspection_of(r: &Row) -> Reinspection {
    Reinspection {
        id: r.get(0),
        order_id: r.get(1),
        result: ReinspectionResult::parse(r.get(2)),
        by: r.get(3),
        ts: r.get(4),
        note: r.get(5),
        photo: r.get(6),
        escalated_to: r.get(7),
    }
}

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

impl OrderDb for PgActing {
    fn held_alerts(&self) -> Result<Vec<(i64, i64)>, ActingError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT o.alert_id, CASE WHEN o.state = 'open' THEN 9223372036854775807 ELSE \
                 (SELECT max(r.ts) FROM reinspections r \
                  WHERE r.order_id = o.id AND r.result = 'passed') END \
                 FROM orders o LEFT JOIN alerts a ON a.id = o.alert_id \
                 WHERE a.state IS NULL OR a.state != 'closed' ORDER BY o.id",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, Option<i64>>(1).unwrap_or(0)))
                .collect())
        })
    }

    fn hold_of(&self, alert_id: i64) -> Result<Option<i64>, ActingError> {
        self.with(move |c| {
            Ok(c.query_opt(HOLD_OF, &[&alert_id])?
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
            let inserted = c.query_one(
                "INSERT INTO orders (alert_id, site, kind, deadline_ts, note, issued_by, \
                 issued_ts, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open') RETURNING id",
                &[&alert_id, &site, &kind, &deadline, &note, &by, &ts],
            );
            match inserted {
                Ok(row) => Ok(Ok(row.get(0))),
                Err(e) if e.code().is_some_and(|s| s.code() == UNIQUE_VIOLATION) => {
                    let existing = c.query_opt(
                        "SELECT id FROM orders WHERE alert_id = $1 AND state = 'open'",
                        &[&alert_id],
                    )?;
                    Ok(Err(existing.map_or(0, |r| r.get(0))))
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
            let n = c.execute(
                "UPDATE orders SET response = $2, response_by = $3, response_ts = $4 \
                 WHERE id = $1",
                &[&order_id, &response, &by, &ts],
            )?;
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
            let changed = match result {
                ReinspectionResult::Passed => tx.execute(
                    "UPDATE orders SET state = 'passed' WHERE id = $1 AND state = 'open'",
                    &[&order_id],
                )?,
                ReinspectionResult::Failed => tx.execute(
                    "UPDATE orders SET escalations = escalations + 1 \
                     WHERE id = $1 AND state = 'open'",
                    &[&order_id],
                )?,
            };
            if changed == 0 {
                return Ok(None);
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO reinspections (order_id, result, by_user, ts, note, photo, \
                     escalated_to) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
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
                .get(0);
            tx.commit()?;
            Ok(Some(id))
        })
    }

    fn order(&self, id: i64) -> Result<Option<Order>, ActingError> {
        self.with(move |c| Ok(orders_where(c, "id = $1", &[&id])?.pop()))
    }

    fn orders_of_alert(&self, alert_id: i64) -> Result<Vec<Order>, ActingError> {
        self.with(move |c| orders_where(c, "alert_id = $1", &[&alert_id]))
    }

    fn orders_between(&self, from: i64, to: i64) -> Result<Vec<Order>, ActingError> {
        self.with(move |c| {
            orders_where(
                c,
                "(issued_ts >= $1 AND issued_ts < $2) OR id IN (SELECT order_id FROM \
                 reinspections WHERE ts >= $1 AND ts < $2)",
                &[&from, &to],
            )
        })
    }
}

fn orders_where(
    c: &mut Client,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Order>, StoreError> {
    let mut orders: Vec<Order> = c
        .query(
            &format!("SELECT {ORDER_COLS} FROM orders WHERE {clause} ORDER BY id LIMIT 10000"),
            args,
        )?
        .iter()
        .map(order_of)
        .collect();
    let checks = c.prepare(
        "SELECT id, order_id, result, by_user, ts, note, photo, escalated_to FROM reinspections \
         WHERE order_id = $1 ORDER BY id",
    )?;
    for o in &mut orders {
        o.reinspections = c
            .query(&checks, &[&o.id])?
            .iter()
            .map(reinspection_of)
            .collect();
    }
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::acting::ActingStore;
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
