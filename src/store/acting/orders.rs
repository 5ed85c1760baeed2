//! Orders on alerts (stop work, or rectify by a deadline), the site's response and the
//! re-inspections. An alert with an open order stays open ([`super::Holds`]) until a re-inspection
//! passes; a failed one raises the order's severity a step.

use super::statements as sql;
use super::{ActingError, ActingStore, SqliteActing};
use crate::store::sql::sqlite;
use rusqlite::{params, OptionalExtension};
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
pub enum OrderKind {
    StopWork,
    Rectify,
}

impl OrderKind {
    pub fn name(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<OrderKind> {
        s.parse().ok()
    }
}

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
pub enum OrderState {
    /// Waiting for a passed re-inspection.
    Open,
    /// A re-inspection passed: the alert may close once its re-check period is over.
    Passed,
}

impl OrderState {
    /// As stored; anything but `passed` reads as open (it keeps holding the alert).
    pub(crate) fn parse(s: &str) -> OrderState {
        s.parse().unwrap_or(OrderState::Open)
    }
}

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
pub enum ReinspectionResult {
    Passed,
    Failed,
}

impl ReinspectionResult {
    pub fn name(self) -> &'static str {
        self.into()
    }
    /// As stored; anything but `passed` reads as failed.
    pub(crate) fn parse(s: &str) -> ReinspectionResult {
        s.parse().unwrap_or(ReinspectionResult::Failed)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reinspection {
    pub id: i64,
    pub order_id: i64,
    pub result: ReinspectionResult,
    pub by: String,
    /// When the inspector looked (event time, Unix ms).
    pub ts: i64,
    pub note: String,
    /// File name under the data directory's `photos/`.
    pub photo: Option<String>,
    /// The severity a failed re-inspection raised the order to.
    pub escalated_to: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Order {
    pub id: i64,
    pub alert_id: i64,
    pub site: String,
    pub kind: OrderKind,
    /// Rectify by (Unix ms); stop-work orders have none.
    pub deadline_ts: Option<i64>,
    pub note: String,
    pub issued_by: String,
    pub issued_ts: i64,
    pub state: OrderState,
    /// Failed re-inspections so far.
    pub escalations: u32,
    pub response: Option<String>,
    pub response_by: Option<String>,
    pub response_ts: Option<i64>,
    pub reinspections: Vec<Reinspection>,
}

/// A new order.
pub struct NewOrder<'a> {
    pub alert_id: i64,
    pub site: &'a str,
    pub kind: OrderKind,
    pub deadline_ts: Option<i64>,
    pub note: &'a str,
    pub by: &'a str,
    pub ts: i64,
}

/// A re-inspection to record; `photo` is (bytes, file extension), already checked.
pub struct NewReinspection<'a> {
    pub order_id: i64,
    pub result: ReinspectionResult,
    pub by: &'a str,
    pub ts: i64,
    pub note: &'a str,
    pub photo: Option<(&'a [u8], &'static str)>,
    /// The alert's severity now: a failure raises the order one step above it per failure.
    pub severity: &'a str,
}

const SEVERITIES: [&str; 4] = ["info", "warning", "violation", "critical"];

/// `steps` steps above `severity`, capped at critical.
pub fn escalated(severity: &str, steps: u32) -> String {
    let at = SEVERITIES.iter().position(|s| *s == severity).unwrap_or(0);
    SEVERITIES[(at + steps as usize).min(SEVERITIES.len() - 1)].to_string()
}

/// The rows of orders and re-inspections.
pub trait OrderDb: Send + Sync {
    /// Alerts of orders whose alert is not closed, and the event time from which each may close
    /// (`i64::MAX` while no re-inspection passed).
    fn held_alerts(&self) -> Result<Vec<(i64, i64)>, ActingError>;
    /// One alert's hold as [`OrderDb::held_alerts`] says it (its latest order decides); `None`
    /// when it never had an order.
    fn hold_of(&self, alert_id: i64) -> Result<Option<i64>, ActingError>;
    /// Store an open order: `Err(existing)` when the alert has an open order already.
    fn insert_order(&self, o: &NewOrder<'_>) -> Result<Result<i64, i64>, ActingError>;
    /// Record the site's response; false when there is no such order.
    fn set_response(
        &self,
        order_id: i64,
        response: &str,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError>;
    /// Store a re-inspection of an open order with its photo's file name, and pass the order
    /// or count the failure, in one transaction; `None` when the order is not open (any more).
    fn insert_reinspection(
        &self,
        n: &NewReinspection<'_>,
        photo: Option<&str>,
        escalated_to: Option<&str>,
    ) -> Result<Option<i64>, ActingError>;
    fn order(&self, id: i64) -> Result<Option<Order>, ActingError>;
    /// An alert's orders, oldest first, with their re-inspections.
    fn orders_of_alert(&self, alert_id: i64) -> Result<Vec<Order>, ActingError>;
    /// Orders issued in [from, to) or re-inspected then (event time).
    fn orders_between(&self, from: i64, to: i64) -> Result<Vec<Order>, ActingError>;
}

/// A photo's file name: unique without the row's id, so it is written before the row.
fn photo_name(order_id: i64, ext: &str) -> Result<String, ActingError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| ActingError::Invalid(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("order-{order_id}-reinspection-{hex}.{ext}"))
}

impl ActingStore {
    /// Issue an order on an alert; an alert carries one open order at a time.
    pub fn issue_order(&self, o: &NewOrder<'_>) -> Result<Order, ActingError> {
        if o.kind == OrderKind::Rectify && o.deadline_ts.is_none() {
            return Err(ActingError::Invalid(
                "a rectify order needs a deadline".into(),
            ));
        }
        let id = self.db.insert_order(o)?.map_err(|existing| {
            ActingError::Invalid(format!(
                "alert {} already has open order {existing}",
                o.alert_id
            ))
        })?;
        self.holds.hold_until(o.alert_id, i64::MAX);
        self.order(id)
    }

    /// Record what the site answered (as reported to the inspector).
    pub fn respond(
        &self,
        order_id: i64,
        response: &str,
        by: &str,
        ts: i64,
    ) -> Result<Order, ActingError> {
        if !self.db.set_response(order_id, response, by, ts)? {
            return Err(ActingError::NotFound(format!("order {order_id}")));
        }
        self.order(order_id)
    }

    /// Record a re-inspection: passed lifts the hold, failed escalates.
    pub fn reinspect(&self, n: &NewReinspection<'_>) -> Result<Reinspection, ActingError> {
        let order = self.order(n.order_id)?;
        let passed_already = || {
            ActingError::Invalid(format!(
                "order {} has passed its re-inspection already",
                order.id
            ))
        };
        if order.state != OrderState::Open {
            return Err(passed_already());
        }
        if n.ts < order.issued_ts {
            return Err(ActingError::Invalid(
                "a re-inspection cannot be before its order".into(),
            ));
        }
        let escalated_to = (n.result == ReinspectionResult::Failed)
            .then(|| escalated(n.severity, order.escalations + 1));
        // The photo first: a row never names a file that is not there.
        let photo = match n.photo {
            Some((bytes, ext)) => {
                let name = photo_name(n.order_id, ext)?;
                let path = self.photo_dir.join(&name);
                std::fs::create_dir_all(&self.photo_dir)
                    .and_then(|_| std::fs::write(&path, bytes))
                    .map_err(|source| ActingError::Photo {
                        path: path.display().to_string(),
                        source,
                    })?;
                Some((name, path))
            }
            None => None,
        };
        let stored = self.db.insert_reinspection(
            n,
            photo.as_ref().map(|(name, _)| name.as_str()),
            escalated_to.as_deref(),
        );
        let id = match stored {
            Ok(Some(id)) => id,
            failed => {
                if let Some((_, path)) = &photo {
                    let _ = std::fs::remove_file(path);
                }
                // Not open any more: another instance recorded a pass meanwhile.
                failed?.ok_or_else(passed_already)?
            }
        };
        if n.result == ReinspectionResult::Passed {
            self.holds.hold_until(order.alert_id, n.ts);
        }
        Ok(Reinspection {
            id,
            order_id: n.order_id,
            result: n.result,
            by: n.by.to_string(),
            ts: n.ts,
            note: n.note.to_string(),
            photo: photo.map(|(name, _)| name),
            escalated_to,
        })
    }

    pub fn order(&self, id: i64) -> Result<Order, ActingError> {
        self.db
            .order(id)?
            .ok_or_else(|| ActingError::NotFound(format!("order {id}")))
    }

    /// An alert's orders, oldest first, with their re-inspections.
    pub fn orders_of_alert(&self, alert_id: i64) -> Result<Vec<Order>, ActingError> {
        self.db.orders_of_alert(alert_id)
    }

    /// Orders issued in [from, to) or re-inspected then (event time).
    pub fn orders_between(&self, from: i64, to: i64) -> Result<Vec<Order>, ActingError> {
        self.db.orders_between(from, to)
    }

    /// A stored photo's bytes (the name as recorded; nothing outside `photos/`).
    pub fn photo(&self, name: &str) -> Result<Vec<u8>, ActingError> {
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !name.starts_with('.');
        if !plain {
            return Err(ActingError::NotFound(format!("photo {name}")));
        }
        std::fs::read(self.photo_dir.join(name))
            .map_err(|_| ActingError::NotFound(format!("photo {name}")))
    }
}

impl OrderDb for SqliteActing {
    fn held_alerts(&self) -> Result<Vec<(i64, i64)>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(sql::HELD_ALERTS)?;
        let ids = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    fn hold_of(&self, alert_id: i64) -> Result<Option<i64>, ActingError> {
        let conn = self.conn();
        let held = conn
            .query_row(&sqlite(sql::HOLD_OF), [alert_id], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.unwrap_or(0))
            })
            .optional()?;
        Ok(held)
    }

    fn insert_order(&self, o: &NewOrder<'_>) -> Result<Result<i64, i64>, ActingError> {
        let conn = self.conn();
        let open: Option<i64> = conn
            .query_row(&sqlite(sql::OPEN_ORDER_OF_ALERT), [o.alert_id], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(existing) = open {
            return Ok(Err(existing));
        }
        let id = conn.query_row(
            &sqlite(sql::INSERT_ORDER),
            params![
                o.alert_id,
                o.site,
                o.kind.name(),
                o.deadline_ts,
                o.note,
                o.by,
                o.ts
            ],
            |r| r.get(0),
        )?;
        Ok(Ok(id))
    }

    fn set_response(
        &self,
        order_id: i64,
        response: &str,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError> {
        let n = self.conn().execute(
            &sqlite(sql::SET_RESPONSE),
            params![order_id, response, by, ts],
        )?;
        Ok(n > 0)
    }

    fn insert_reinspection(
        &self,
        n: &NewReinspection<'_>,
        photo: Option<&str>,
        escalated_to: Option<&str>,
    ) -> Result<Option<i64>, ActingError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let change = match n.result {
            ReinspectionResult::Passed => sql::PASS_ORDER,
            ReinspectionResult::Failed => sql::FAIL_ORDER,
        };
        if tx.execute(&sqlite(change), [n.order_id])? == 0 {
            return Ok(None);
        }
        let id = tx.query_row(
            &sqlite(sql::INSERT_REINSPECTION),
            params![
                n.order_id,
                n.result.name(),
                n.by,
                n.ts,
                n.note,
                photo,
                escalated_to
            ],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(Some(id))
    }

    fn order(&self, id: i64) -> Result<Option<Order>, ActingError> {
        Ok(self.orders_where(sql::ORDER_BY_ID, params![id])?.pop())
    }

    fn orders_of_alert(&self, alert_id: i64) -> Result<Vec<Order>, ActingError> {
        self.orders_where(sql::ORDERS_OF_ALERT, params![alert_id])
    }

    fn orders_between(&self, from: i64, to: i64) -> Result<Vec<Order>, ActingError> {
        self.orders_where(sql::ORDERS_BETWEEN, params![from, to])
    }
}

impl SqliteActing {
    fn orders_where(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Order>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare(&sqlite(&sql::orders_where(clause)))?;
        let mut orders = st
            .query_map(args, |r| sql::order_of(r))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut checks = conn.prepare_cached(&sqlite(sql::REINSPECTIONS_OF_ORDER))?;
        for o in &mut orders {
            o.reinspections = checks
                .query_map([o.id], |r| sql::reinspection_of(r))?
                .collect::<Result<Vec<_>, _>>()?;
        }
        Ok(orders)
    }
}

#[cfg(test)]
#[path = "orders_tests.rs"]
mod tests;
