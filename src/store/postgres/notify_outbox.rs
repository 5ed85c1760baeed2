//! The notification outbox in PostgreSQL. The alert writer appends each change in the
//! transaction that records it ([`push`], under the alert-history lock, so ids become visible in
//! id order and the router's cursor never skips one); every instance's notifier may route and
//! deliver. Routing twice is harmless (one delivery row per change and target); a delivery is
//! sent by one notifier at a time: it claims the target's oldest due row with a lease (the row
//! locked while the lease is taken), and a row leased by another notifier holds the target's
//! later ones back, so they still arrive in order. A notifier that dies mid-send leaves a lease
//! that runs out, and the row goes again (at least once beats never).

use super::alerts::named;
use super::pool::Pool;
use super::schema;
use crate::store::notify_outbox::{Due, NotifyChange, NotifyQueue, OutboxRow, MAX_ROWS};
use crate::store::{Alert, StoreError};
use dustwatch_protocol::time::MINUTE;
use postgres::{GenericClient, Row};

/// How long a claimed delivery is this notifier's: well past a send's timeout.
const LEASE_MS: i64 = 5 * MINUTE;

const ROUTER: &str = "router";

/// Append one alert change inside the alert writer's transaction.
pub(super) fn push(
    tx: &mut impl GenericClient,
    change: NotifyChange,
    alert: &Alert,
    recorded_ms: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(alert).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO notify_outbox (alert_id, change, site, rule, severity, alert, \
             recorded_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &alert.id,
                &change.name(),
                &alert.site,
                &alert.rule,
                &alert.severity.name(),
                &json,
                &recorded_ms,
            ],
        )?
        .get(0);
    if id % 1000 == 0 {
        tx.execute(
            "DELETE FROM notify_outbox WHERE id <= $1",
            &[&(id - MAX_ROWS)],
        )?;
    }
    Ok(())
}

const ROW_COLS: &str = "o.id, o.alert_id, o.change, o.site, o.rule, o.severity, o.alert, \
    o.recorded_ms";

fn row_of(r: &Row) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        change: named(r, 2)?,
        site: r.try_get(3)?,
        rule: r.try_get(4)?,
        severity: named(r, 5)?,
        alert: serde_json::from_str(r.try_get(6)?).unwrap_or(serde_json::Value::Null),
        recorded_ms: r.try_get(7)?,
    })
}

/// One notifier's side of the shared outbox.
pub struct PgNotifyOutbox {
    pool: Pool,
    /// Names this notifier's leases (random per start).
    me: String,
}

impl PgNotifyOutbox {
    pub fn open(url: &str) -> Result<PgNotifyOutbox, StoreError> {
        // Migrated on a pool thread: the synchronous client must not run on an async worker.
        let pool = Pool::start(url, 1)?;
        pool.with(schema::migrate)?;
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| StoreError::Config(format!("random source: {e}")))?;
        Ok(PgNotifyOutbox {
            pool,
            me: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

fn clip(error: &str) -> String {
    error.chars().take(500).collect()
}

impl NotifyQueue for PgNotifyOutbox {
    fn unrouted(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = i64::from(limit);
        self.pool.with(move |c| {
            let last: i64 = c
                .query_opt(
                    "SELECT last_id FROM notify_cursor WHERE name = $1",
                    &[&ROUTER],
                )?
                .map_or(0, |r| r.get(0));
            let rows = c.query(
                &format!(
                    "SELECT {ROW_COLS} FROM notify_outbox o WHERE o.id > $1 ORDER BY o.id LIMIT $2"
                ),
                &[&last, &limit],
            )?;
            rows.iter().map(row_of).collect()
        })
    }

    fn route(&mut self, up_to: i64, routes: &[(i64, &str, i64)]) -> Result<(), StoreError> {
        let ids: Vec<i64> = routes.iter().map(|r| r.0).collect();
        let targets: Vec<String> = routes.iter().map(|r| r.1.to_string()).collect();
        let dues: Vec<i64> = routes.iter().map(|r| r.2).collect();
        self.pool.with(move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO notify_delivery (outbox_id, target, due_ms, state) \
                 SELECT i, t, d, 'pending' FROM unnest($1::int8[], $2::text[], $3::int8[]) \
                 AS r(i, t, d) ON CONFLICT DO NOTHING",
                &[&ids, &targets, &dues],
            )?;
            tx.execute(
                "INSERT INTO notify_cursor (name, last_id) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE \
                 SET last_id = greatest(notify_cursor.last_id, excluded.last_id)",
                &[&ROUTER, &up_to],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn next_due(&mut self, target: &str, now_ms: i64) -> Result<Option<Due>, StoreError> {
        let (target, me) = (target.to_string(), self.me.clone());
        self.pool.with(move |c| {
            let mut tx = c.transaction()?;
            // The oldest due row, locked: a second notifier asking now waits here and then
            // sees this one's lease.
            let Some(head) = tx.query_opt(
                "SELECT outbox_id, attempts, lease_owner, lease_until_ms FROM notify_delivery \
                 WHERE target = $1 AND state = 'pending' AND due_ms <= $2 \
                 ORDER BY outbox_id LIMIT 1 FOR UPDATE",
                &[&target, &now_ms],
            )?
            else {
                return Ok(None);
            };
            let (id, attempts): (i64, i64) = (head.get(0), head.get(1));
            let owner: Option<String> = head.get(2);
            let until: Option<i64> = head.get(3);
            let leased_elsewhere =
                owner.is_some_and(|o| o != me) && until.is_some_and(|u| u > now_ms);
            if leased_elsewhere {
                return Ok(None);
            }
            tx.execute(
                "UPDATE notify_delivery SET lease_owner = $3, lease_until_ms = $4 \
                 WHERE outbox_id = $1 AND target = $2",
                &[&id, &target, &me, &(now_ms + LEASE_MS)],
            )?;
            let row = tx.query_opt(
                &format!("SELECT {ROW_COLS} FROM notify_outbox o WHERE o.id = $1"),
                &[&id],
            )?;
            tx.commit()?;
            row.map(|r| {
                Ok(Due {
                    row: row_of(&r)?,
                    attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
                })
            })
            .transpose()
        })
    }

    fn delivered(&mut self, id: i64, target: &str, now_ms: i64) -> Result<(), StoreError> {
        let target = target.to_string();
        self.pool.with(move |c| {
            c.execute(
                "UPDATE notify_delivery SET state = 'delivered', done_ms = $3, \
                 attempts = attempts + 1, lease_owner = NULL, lease_until_ms = NULL \
                 WHERE outbox_id = $1 AND target = $2",
                &[&id, &target, &now_ms],
            )?;
            Ok(())
        })
    }

    fn failed(&mut self, id: i64, target: &str, error: &str) -> Result<(), StoreError> {
        let (target, error) = (target.to_string(), clip(error));
        // The lease goes: whichever notifier tries next, the row keeps its place in line.
        self.pool.with(move |c| {
            c.execute(
                "UPDATE notify_delivery SET attempts = attempts + 1, last_error = $3, \
                 lease_owner = NULL, lease_until_ms = NULL WHERE outbox_id = $1 AND target = $2",
                &[&id, &target, &error],
            )?;
            Ok(())
        })
    }

    fn refused(
        &mut self,
        id: i64,
        target: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (target, error) = (target.to_string(), clip(error));
        self.pool.with(move |c| {
            c.execute(
                "UPDATE notify_delivery SET state = 'refused', attempts = attempts + 1, \
                 last_error = $3, done_ms = $4, lease_owner = NULL, lease_until_ms = NULL \
                 WHERE outbox_id = $1 AND target = $2",
                &[&id, &target, &error, &now_ms],
            )?;
            Ok(())
        })
    }

    fn backlog(&self) -> Result<i64, StoreError> {
        self.pool.with(|c| {
            Ok(c.query_one(
                "SELECT count(*) FROM notify_delivery WHERE state = 'pending'",
                &[],
            )?
            .get(0))
        })
    }

    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.pool.with(move |c| {
            let mut tx = c.transaction()?;
            let mut n = tx.execute(
                "DELETE FROM notify_delivery WHERE state != 'pending' AND done_ms < $1",
                &[&before_ms],
            )?;
            n += tx.execute(
                "DELETE FROM notify_outbox o WHERE recorded_ms < $1 \
                 AND id <= coalesce((SELECT last_id FROM notify_cursor WHERE name = 'router'), 0) \
                 AND NOT EXISTS (SELECT 1 FROM notify_delivery d WHERE d.outbox_id = o.id)",
                &[&before_ms],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two notifiers on one database: the target's oldest due row is one notifier's at a time,
    /// and the other's later rows wait behind it (in order), until it is delivered.
    #[test]
    fn one_notifier_at_a_time_claims_a_delivery() {
        let Some(pg) = dustwatch_testkit::Postgres::start() else {
            return;
        };
        let url = pg.database();
        let mut a = PgNotifyOutbox::open(&url).expect("a");
        let mut b = PgNotifyOutbox::open(&url).expect("b");
        a.pool
            .with(|c| {
                for alert in [1_i64, 2] {
                    c.execute(
                        "INSERT INTO notify_outbox (alert_id, change, site, rule, severity, \
                         alert, recorded_ms) VALUES ($1, 'opened', 's1', 'r', 'warning', '{}', 0)",
                        &[&alert],
                    )?;
                }
                Ok(())
            })
            .expect("two changes");
        let rows = a.unrouted(10).expect("unrouted");
        let (first, second) = (rows[0].id, rows[1].id);
        let routes = [(first, "t", 0), (second, "t", 0)];
        a.route(second, &routes).expect("a routes");
        b.route(second, &routes)
            .expect("b routes the same: kept once");
        assert!(b.unrouted(10).expect("unrouted").is_empty());
        assert_eq!(a.backlog().expect("backlog"), 2);

        let claimed = a.next_due("t", 1).expect("due").expect("a claims");
        assert_eq!(claimed.row.id, first);
        assert!(
            b.next_due("t", 1).expect("due").is_none(),
            "b neither sends a's row nor jumps ahead of it"
        );
        assert_eq!(
            a.next_due("t", 1).expect("due").map(|d| d.row.id),
            Some(first),
            "a's own lease"
        );
        a.delivered(first, "t", 2).expect("delivered");
        let next = b.next_due("t", 3).expect("due").expect("b claims the next");
        assert_eq!(next.row.id, second);
        b.failed(second, "t", "receiver down").expect("failed");
        // A failure lets go: the row keeps its place and either notifier retries it.
        assert_eq!(
            a.next_due("t", 4)
                .expect("due")
                .map(|d| (d.row.id, d.attempts)),
            Some((second, 1))
        );
        // A lease that ran out (its notifier died mid-send) is taken over.
        assert_eq!(
            b.next_due("t", 4 + LEASE_MS + 1)
                .expect("due")
                .map(|d| d.row.id),
            Some(second)
        );
    }
}
