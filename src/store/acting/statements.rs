//! The acting tables' statements and row mappings, written once for SQLite and PostgreSQL
//! (`$n` placeholders; `crate::store::sql::sqlite` turns them into SQLite's). Each backend only
//! binds and runs them; where the dialects really differ (collation, bulk inserts) the backend
//! keeps its own text.

use super::{
    Checkin, Credentials, Notice, NoticeReceipt, Order, OrderKind, OrderState, PatrolResult,
    ReceiptVia, Reinspection, ReinspectionResult, StoredUser,
};
use crate::store::sql::{u32_of, AnyRow};

// Orders and re-inspections.

/// Each unclosed alert with an order, and the event time from which it may close
/// (`i64::MAX` while the order is open, else the passed re-inspection's time).
pub(crate) const HELD_ALERTS: &str =
    "SELECT o.alert_id, CASE WHEN o.state = 'open' THEN 9223372036854775807 ELSE \
     (SELECT max(r.ts) FROM reinspections r \
      WHERE r.order_id = o.id AND r.result = 'passed') END \
     FROM orders o LEFT JOIN alerts a ON a.id = o.alert_id \
     WHERE a.state IS NULL OR a.state != 'closed' ORDER BY o.id";
/// One alert's hold: its latest order's (open: `i64::MAX`, until a re-inspection passes; passed:
/// from the passed re-inspection's time). No row: the alert never had an order.
pub(crate) const HOLD_OF: &str = "SELECT CASE WHEN o.state = 'open' THEN 9223372036854775807 ELSE \
     (SELECT max(r.ts) FROM reinspections r WHERE r.order_id = o.id AND r.result = 'passed') \
     END FROM orders o WHERE o.alert_id = $1 ORDER BY o.id DESC LIMIT 1";
pub(crate) const OPEN_ORDER_OF_ALERT: &str =
    "SELECT id FROM orders WHERE alert_id = $1 AND state = 'open'";
pub(crate) const INSERT_ORDER: &str =
    "INSERT INTO orders (alert_id, site, kind, deadline_ts, note, issued_by, issued_ts, state) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'open') RETURNING id";
pub(crate) const SET_RESPONSE: &str =
    "UPDATE orders SET response = $2, response_by = $3, response_ts = $4 WHERE id = $1";
pub(crate) const PASS_ORDER: &str =
    "UPDATE orders SET state = 'passed' WHERE id = $1 AND state = 'open'";
pub(crate) const FAIL_ORDER: &str =
    "UPDATE orders SET escalations = escalations + 1 WHERE id = $1 AND state = 'open'";
pub(crate) const INSERT_REINSPECTION: &str =
    "INSERT INTO reinspections (order_id, result, by_user, ts, note, photo, escalated_to) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
pub(crate) const ORDER_BY_ID: &str = "id = $1";
pub(crate) const ORDERS_OF_ALERT: &str = "alert_id = $1";
/// Issued in [$1, $2) or re-inspected then.
pub(crate) const ORDERS_BETWEEN: &str =
    "(issued_ts >= $1 AND issued_ts < $2) OR id IN (SELECT order_id FROM reinspections \
     WHERE ts >= $1 AND ts < $2)";
pub(crate) const REINSPECTIONS_OF_ORDER: &str =
    "SELECT id, order_id, result, by_user, ts, note, photo, escalated_to FROM reinspections \
     WHERE order_id = $1 ORDER BY id";

/// The orders matching `clause` (one of the `ORDER*` clauses above), oldest first, bounded.
pub(crate) fn orders_where(clause: &str) -> String {
    format!(
        "SELECT id, alert_id, site, kind, deadline_ts, note, issued_by, issued_ts, \
         state, escalations, response, response_by, response_ts \
         FROM orders WHERE {clause} ORDER BY id LIMIT 10000"
    )
}

/// A row of [`orders_where`], without its re-inspections.
pub(crate) fn order_of<R: AnyRow>(r: &R) -> Result<Order, R::Error> {
    let kind: String = r.col(3)?;
    let state: String = r.col(8)?;
    Ok(Order {
        id: r.col(0)?,
        alert_id: r.col(1)?,
        site: r.col(2)?,
        kind: OrderKind::parse(&kind).unwrap_or(OrderKind::Rectify),
        deadline_ts: r.col(4)?,
        note: r.col(5)?,
        issued_by: r.col(6)?,
        issued_ts: r.col(7)?,
        state: OrderState::parse(&state),
        escalations: u32_of(r.col(9)?),
        response: r.col(10)?,
        response_by: r.col(11)?,
        response_ts: r.col(12)?,
        reinspections: Vec::new(),
    })
}

/// A row of [`REINSPECTIONS_OF_ORDER`].
pub(crate) fn reinspection_of<R: AnyRow>(r: &R) -> Result<Reinspection, R::Error> {
    let result: String = r.col(2)?;
    Ok(Reinspection {
        id: r.col(0)?,
        order_id: r.col(1)?,
        result: ReinspectionResult::parse(&result),
        by: r.col(3)?,
        ts: r.col(4)?,
        note: r.col(5)?,
        photo: r.col(6)?,
        escalated_to: r.col(7)?,
    })
}

// Stop-work notices and their receipts.

pub(crate) const INSERT_NOTICE: &str =
    "INSERT INTO notices (level, issued_by, issued_ts, note) VALUES ($1, $2, $3, $4) \
     RETURNING id";
/// The first receipt counts: a filled one keeps what it has.
pub(crate) const SET_RECEIPT: &str =
    "UPDATE notice_receipts SET via = coalesce(via, $3), by_user = coalesce(by_user, $4), \
     received_ts = coalesce(received_ts, $5) WHERE notice_id = $1 AND site = $2";
pub(crate) const NOTICE_BY_ID: &str = "id = $1";
pub(crate) const NOTICES_BETWEEN: &str = "issued_ts >= $1 AND issued_ts < $2";
pub(crate) const NEWEST_NOTICES: &str = "id IN (SELECT id FROM notices ORDER BY id DESC LIMIT $1)";
/// A notice's receipts; each backend orders them by site in its byte-wise collation.
pub(crate) const RECEIPTS_OF_NOTICE: &str =
    "SELECT site, work, via, by_user, received_ts FROM notice_receipts WHERE notice_id = $1";

/// The notices matching `clause` (one of the `NOTICE*` clauses above), oldest first, bounded.
pub(crate) fn notices_where(clause: &str) -> String {
    format!(
        "SELECT id, level, issued_by, issued_ts, note FROM notices WHERE {clause} \
         ORDER BY id LIMIT 1000"
    )
}

/// A row of [`notices_where`], without its receipts.
pub(crate) fn notice_of<R: AnyRow>(r: &R) -> Result<Notice, R::Error> {
    Ok(Notice {
        id: r.col(0)?,
        level: r.col(1)?,
        issued_by: r.col(2)?,
        issued_ts: r.col(3)?,
        note: r.col(4)?,
        receipts: Vec::new(),
    })
}

/// A row of [`RECEIPTS_OF_NOTICE`].
pub(crate) fn receipt_of<R: AnyRow>(r: &R) -> Result<NoticeReceipt, R::Error> {
    let via: Option<String> = r.col(2)?;
    Ok(NoticeReceipt {
        site: r.col(0)?,
        work: r.col(1)?,
        via: via.as_deref().map(ReceiptVia::parse),
        by: r.col(3)?,
        received_ts: r.col(4)?,
    })
}

// The night patrol.

pub(crate) const INSERT_CHECKIN: &str =
    "INSERT INTO patrol_checkins (night, site, result, by_user, ts, note) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
pub(crate) const CHECKINS_OF_NIGHT: &str =
    "SELECT id, night, site, result, by_user, ts, note FROM patrol_checkins \
     WHERE night = $1 ORDER BY id LIMIT 10000";

/// A row of [`CHECKINS_OF_NIGHT`].
pub(crate) fn checkin_of<R: AnyRow>(r: &R) -> Result<Checkin, R::Error> {
    let result: String = r.col(3)?;
    Ok(Checkin {
        id: r.col(0)?,
        night: r.col(1)?,
        site: r.col(2)?,
        result: PatrolResult::parse(&result).unwrap_or(PatrolResult::Working),
        by: r.col(4)?,
        ts: r.col(5)?,
        note: r.col(6)?,
    })
}

// Users, API tokens and sessions.

/// Every user; each backend orders them by name in its byte-wise collation.
pub(crate) const USERS: &str = "SELECT id, name, role, disabled, created_ms FROM users";
pub(crate) const INSERT_USER: &str =
    "INSERT INTO users (name, role, password, created_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO NOTHING";
pub(crate) const USER_BY_NAME: &str =
    "SELECT id, name, role, disabled, created_ms FROM users WHERE name = $1";
pub(crate) const CREDENTIALS: &str = "SELECT id, password, disabled FROM users WHERE name = $1";
/// Disabling a user drops their sessions and tokens with it (one transaction).
pub(crate) const DISABLE_USER: [&str; 3] = [
    "UPDATE users SET disabled = true WHERE id = $1",
    "DELETE FROM sessions WHERE user_id = $1",
    "DELETE FROM api_tokens WHERE user_id = $1",
];
pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (hash, user_id, label, created_ms) VALUES ($1, $2, $3, $4)";
pub(crate) const USER_BY_TOKEN: &str =
    "SELECT u.id, u.name, u.role, u.disabled, u.created_ms FROM api_tokens t \
     JOIN users u ON u.id = t.user_id WHERE t.hash = $1 AND NOT u.disabled";
pub(crate) const DROP_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_ms < $1";
pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO sessions (id_hash, user_id, csrf, created_ms, expires_ms) \
     VALUES ($1, $2, $3, $4, $5)";
/// The user of a live session and its CSRF token (column 5).
pub(crate) const SESSION: &str =
    "SELECT u.id, u.name, u.role, u.disabled, u.created_ms, s.csrf FROM sessions s \
     JOIN users u ON u.id = s.user_id \
     WHERE s.id_hash = $1 AND s.expires_ms > $2 AND NOT u.disabled";
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";

/// A row starting with `id, name, role, disabled, created_ms`.
pub(crate) fn user_of<R: AnyRow>(r: &R) -> Result<StoredUser, R::Error> {
    Ok(StoredUser {
        id: r.col(0)?,
        name: r.col(1)?,
        role: r.col(2)?,
        disabled: r.col(3)?,
        created_ms: r.col(4)?,
    })
}

/// A row of [`CREDENTIALS`].
pub(crate) fn credentials_of<R: AnyRow>(r: &R) -> Result<Credentials, R::Error> {
    Ok(Credentials {
        id: r.col(0)?,
        phc: r.col(1)?,
        disabled: r.col(2)?,
    })
}
