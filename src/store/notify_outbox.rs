//! The notification outbox: one row per alert change, written in the transaction that records
//! the change, and one delivery row per (change, target) once the notifier routed it. Delivery
//! rows are marked delivered only after the receiver accepted the message, so a receiver outage
//! or a restart loses nothing; the primary key (outbox id, target) makes a second delivery row
//! for the same change impossible.
//!
//! Ids come from `AUTOINCREMENT` and there is one alert writer, so ids rise in commit order and
//! the router's cursor never skips a row.

use super::alerts::named;
use super::config::Synchronous;
use super::connection::open_writer;
use super::StoreError;
use dustwatch_protocol::{Change, Severity};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use std::path::Path;

/// What a notification reports about an alert: the changes its history records, and an
/// escalation (an evidence update that raised the severity), which only notifications carry.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NotifyChange {
    Opened,
    Reactivated,
    Escalated,
    Cleared,
    Closed,
    Acknowledged,
}

impl NotifyChange {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The notification of a recorded change; a plain evidence update sends none (an escalation
    /// is decided where the severity before the update is known).
    pub fn of(change: Change) -> Option<NotifyChange> {
        match change {
            Change::Opened => Some(NotifyChange::Opened),
            Change::Reactivated => Some(NotifyChange::Reactivated),
            Change::Cleared => Some(NotifyChange::Cleared),
            Change::Closed => Some(NotifyChange::Closed),
            Change::Acknowledged => Some(NotifyChange::Acknowledged),
            Change::Updated => None,
        }
    }
}

/// Changes kept undelivered at most: beyond this the oldest go (bounded disk when nothing
/// routes them, e.g. notifications are not configured).
pub const MAX_ROWS: i64 = 100_000;

/// Append one alert change inside the alert writer's transaction.
pub fn push(
    tx: &Transaction,
    change: NotifyChange,
    alert: &super::Alert,
    recorded_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO notify_outbox (alert_id, change, site, rule, severity, alert, recorded_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        alert.id,
        change.name(),
        alert.site,
        alert.rule,
        alert.severity.name(),
        serde_json::to_string(alert).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        recorded_ms
    ])?;
    let id = tx.last_insert_rowid();
    if id % 1000 == 0 {
        tx.execute(
            "DELETE FROM notify_outbox WHERE id <= ?1",
            params![id - MAX_ROWS],
        )?;
    }
    Ok(())
}

/// One recorded alert change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub alert_id: i64,
    pub change: NotifyChange,
    pub site: String,
    pub rule: String,
    pub severity: Severity,
    /// The alert as it stood after the change (JSON of `Alert`).
    pub alert: serde_json::Value,
    pub recorded_ms: i64,
}

/// A delivery due now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub row: OutboxRow,
    pub attempts: u32,
}

/// The notifier's side of the outbox: SQLite ([`NotifyOutbox`]) or PostgreSQL
/// (`store::postgres::PgNotifyOutbox`, where several instances' notifiers share the rows and
/// each delivery is claimed by one of them before it is sent).
pub trait NotifyQueue: Send {
    /// Changes after the router's cursor, oldest first, at most `limit`.
    fn unrouted(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError>;
    /// Record the targets of routed changes and move the cursor past them, in one transaction.
    /// `routes` holds (outbox id, target, due ms) and may name no target for a change; a
    /// delivery row routed twice is kept once.
    fn route(&mut self, up_to: i64, routes: &[(i64, &str, i64)]) -> Result<(), StoreError>;
    /// The oldest pending delivery of `target` due at `now_ms`, now this notifier's to send.
    /// Held (quiet-hours) messages are not due yet and do not hold back those that are.
    fn next_due(&mut self, target: &str, now_ms: i64) -> Result<Option<Due>, StoreError>;
    fn delivered(&mut self, id: i64, target: &str, now_ms: i64) -> Result<(), StoreError>;
    /// A failed attempt: counted, the error kept, still pending.
    fn failed(&mut self, id: i64, target: &str, error: &str) -> Result<(), StoreError>;
    /// A message the receiver refused for good (it would be refused again): kept, not retried.
    fn refused(
        &mut self,
        id: i64,
        target: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Pending deliveries (for the backlog gauge).
    fn backlog(&self) -> Result<i64, StoreError>;
    /// Forget finished deliveries done before `before_ms`, and changes routed and finished.
    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError>;
}

/// The notifier's side of the outbox on SQLite, on its own connection.
pub struct NotifyOutbox {
    conn: Connection,
}

const ROUTER: &str = "router";

impl NotifyOutbox {
    pub fn open(dir: &Path) -> Result<NotifyOutbox, StoreError> {
        Ok(NotifyOutbox {
            conn: open_writer(dir, Synchronous::Normal)?,
        })
    }
}

impl NotifyQueue for NotifyOutbox {
    fn unrouted(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let last: i64 = self
            .conn
            .query_row(
                "SELECT last_id FROM notify_cursor WHERE name = ?1",
                params![ROUTER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, alert_id, change, site, rule, severity, alert, recorded_ms \
             FROM notify_outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![last, limit], |r| {
            let alert: String = r.get(6)?;
            Ok(OutboxRow {
                id: r.get(0)?,
                alert_id: r.get(1)?,
                change: named(r, 2)?,
                site: r.get(3)?,
                rule: r.get(4)?,
                severity: named(r, 5)?,
                alert: serde_json::from_str(&alert).unwrap_or(serde_json::Value::Null),
                recorded_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn route(&mut self, up_to: i64, routes: &[(i64, &str, i64)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (id, target, due) in routes {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO notify_delivery (outbox_id, target, due_ms, state) \
                 VALUES (?1, ?2, ?3, 'pending')",
            )?
            .execute(params![id, target, due])?;
        }
        tx.execute(
            "INSERT INTO notify_cursor (name, last_id) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            params![ROUTER, up_to],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn next_due(&mut self, target: &str, now_ms: i64) -> Result<Option<Due>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT o.id, o.alert_id, o.change, o.site, o.rule, o.severity, o.alert, \
                 o.recorded_ms, d.attempts FROM notify_delivery d \
                 JOIN notify_outbox o ON o.id = d.outbox_id \
                 WHERE d.target = ?1 AND d.state = 'pending' AND d.due_ms <= ?2 \
                 ORDER BY d.outbox_id LIMIT 1",
            )?
            .query_row(params![target, now_ms], |r| {
                let alert: String = r.get(6)?;
                Ok(Due {
                    row: OutboxRow {
                        id: r.get(0)?,
                        alert_id: r.get(1)?,
                        change: named(r, 2)?,
                        site: r.get(3)?,
                        rule: r.get(4)?,
                        severity: named(r, 5)?,
                        alert: serde_json::from_str(&alert).unwrap_or(serde_json::Value::Null),
                        recorded_ms: r.get(7)?,
                    },
                    attempts: r.get(8)?,
                })
            })
            .optional()?)
    }

    fn delivered(&mut self, id: i64, target: &str, now_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE notify_delivery SET state = 'delivered', done_ms = ?3, attempts = attempts + 1 \
             WHERE outbox_id = ?1 AND target = ?2",
            params![id, target, now_ms],
        )?;
        Ok(())
    }

    fn failed(&mut self, id: i64, target: &str, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE notify_delivery SET attempts = attempts + 1, last_error = ?3 \
             WHERE outbox_id = ?1 AND target = ?2",
            params![id, target, error.chars().take(500).collect::<String>()],
        )?;
        Ok(())
    }

    fn refused(
        &mut self,
        id: i64,
        target: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE notify_delivery SET state = 'refused', attempts = attempts + 1, \
             last_error = ?3, done_ms = ?4 WHERE outbox_id = ?1 AND target = ?2",
            params![
                id,
                target,
                error.chars().take(500).collect::<String>(),
                now_ms
            ],
        )?;
        Ok(())
    }

    fn backlog(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM notify_delivery WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }

    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let mut n = tx.execute(
            "DELETE FROM notify_delivery WHERE state != 'pending' AND done_ms < ?1",
            params![before_ms],
        )?;
        n += tx.execute(
            "DELETE FROM notify_outbox WHERE recorded_ms < ?1 \
             AND id <= coalesce((SELECT last_id FROM notify_cursor WHERE name = 'router'), 0) \
             AND NOT EXISTS (SELECT 1 FROM notify_delivery d WHERE d.outbox_id = notify_outbox.id)",
            params![before_ms],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::alerts::{Alert, AlertStore, AlertWriter, Change, EventTime};
    use dustwatch_protocol::{AlertState, Level, RuleKind, Severity};

    fn alert(id: i64) -> Alert {
        Alert {
            id,
            site: "s1".into(),
            rule: "r".into(),
            kind: RuleKind::Window,
            severity: Severity::Warning,
            state: AlertState::Active,
            acknowledged: false,
            ack_by: None,
            ack_comment: None,
            opened_ts: EventTime(0),
            updated_ts: EventTime(0),
            cleared_ts: None,
            closed_ts: None,
            offences: 1,
            level: Level::None,
            evidence: serde_json::json!({}),
        }
    }

    #[test]
    fn finished_deliveries_are_pruned_and_pending_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut alerts = AlertStore::open(dir.path()).expect("alerts");
        alerts
            .apply(&[(Change::Opened, alert(1)), (Change::Opened, alert(2))])
            .expect("two changes");
        let mut outbox = NotifyOutbox::open(dir.path()).expect("outbox");
        let rows = outbox.unrouted(10).expect("unrouted");
        assert_eq!(rows.len(), 2);
        let (a, b) = (rows[0].id, rows[1].id);
        outbox
            .route(b, &[(a, "t", 0), (b, "t", 0), (a, "t", 0)])
            .expect("routed; a repeat is ignored");
        assert!(outbox.unrouted(10).expect("unrouted").is_empty());
        let due = outbox.next_due("t", 1).expect("due").expect("one due");
        assert_eq!(due.row.id, a, "oldest first");
        outbox.delivered(a, "t", 1).expect("delivered");
        assert_eq!(outbox.backlog().expect("backlog"), 1);
        // Far in the future: the delivered change goes, the pending one stays.
        let gone = outbox.prune(i64::MAX).expect("prune");
        assert_eq!(gone, 2, "the first change and its delivery row");
        assert_eq!(
            outbox.next_due("t", 1).expect("due").map(|d| d.row.id),
            Some(b)
        );
        outbox.prune(i64::MAX).expect("prune again");
        let left: i64 = outbox
            .conn
            .query_row("SELECT count(*) FROM notify_outbox", [], |r| r.get(0))
            .expect("count");
        assert_eq!(
            left, 1,
            "the change still pending stays, the finished one went"
        );
    }

    #[test]
    fn notify_change_text_json_and_parse_agree() {
        use strum::VariantArray;
        for &c in NotifyChange::VARIANTS {
            let json = serde_json::to_value(c).expect("a unit variant serialises");
            assert_eq!(json, serde_json::Value::String(c.to_string()));
            assert_eq!(c.name().parse::<NotifyChange>().ok(), Some(c));
        }
        assert_eq!(NotifyChange::of(Change::Updated), None);
        assert_eq!(
            NotifyChange::of(Change::Acknowledged),
            Some(NotifyChange::Acknowledged)
        );
    }

    #[test]
    fn rows_carry_typed_changes_and_a_word_this_build_does_not_know_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut alerts = AlertStore::open(dir.path()).expect("alerts");
        let mut worse = alert(1);
        worse.severity = Severity::Critical;
        alerts
            .apply(&[(Change::Opened, alert(1)), (Change::Updated, worse)])
            .expect("opened, then escalated");
        let outbox = NotifyOutbox::open(dir.path()).expect("outbox");
        let rows = outbox.unrouted(10).expect("unrouted");
        let seen: Vec<_> = rows.iter().map(|r| (r.change, r.severity)).collect();
        assert_eq!(
            seen,
            [
                (NotifyChange::Opened, Severity::Warning),
                (NotifyChange::Escalated, Severity::Critical)
            ]
        );
        outbox
            .conn
            .execute("UPDATE notify_outbox SET change = 'exploded'", [])
            .expect("corrupt the rows");
        let e = outbox.unrouted(10).expect_err("unknown change");
        assert!(e.to_string().contains("exploded"), "{e}");
    }
}
