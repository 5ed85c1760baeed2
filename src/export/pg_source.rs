//! The exporter's source on the PostgreSQL store: the same outbox and alert-history reading as
//! [`super::OutboxSource`], through a connection on a thread of its own (the blocking client
//! must not be driven, or dropped, on the async workers). Writers append to the outbox and the
//! alert history under advisory locks, so ids become visible in id order and the cursor never
//! passes a row committed later.

use super::line::{self, SiteTags};
use super::source::{named, Batch, Cursor, ExportSource};
use crate::store::outbox::OutboxKind;
use crate::store::postgres::pool::Pool;
use crate::store::StoreError;
use dustwatch_protocol::{EventTime, Level, Metric, Reading};
use postgres::Client;
use std::collections::BTreeMap;
use std::str::FromStr;

pub struct PgOutboxSource {
    pool: Pool,
    name: String,
    alerts_name: String,
}

const ALERT_SQL: &str = "
SELECT h.id, h.alert_id, h.change, h.ts, h.state, h.severity, h.acknowledged,
       a.site, a.rule, s.street, s.kind
FROM alert_history h
LEFT JOIN alerts a ON a.id = h.alert_id
LEFT JOIN sites s ON s.id = a.site
WHERE h.id > $1
ORDER BY h.id
LIMIT $2";

fn batch_sql() -> String {
    let metrics: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("r.{}", m.name()))
        .collect();
    format!(
        "SELECT o.id, o.kind, o.site, o.device, o.boot, o.seq, o.ts, s.street, s.kind, \
         r.interval_s, r.flags, e.kind, c.level, {metrics}
         FROM outbox o
         LEFT JOIN sites s ON s.id = o.site
         LEFT JOIN readings r ON o.kind = 1 AND r.site = o.site AND r.ts = o.ts
              AND r.device = o.device AND r.boot = o.boot AND r.seq = o.seq
         LEFT JOIN events e ON o.kind = 2 AND e.site = o.site AND e.device = o.device
              AND e.boot = o.boot AND e.seq = o.seq
         LEFT JOIN city_levels c ON o.kind = 3 AND c.ts = o.ts
         WHERE o.id > $1 ORDER BY o.id LIMIT $2",
        metrics = metrics.join(", ")
    )
}

/// Column of the first metric in [`batch_sql`].
const FIRST_METRIC: usize = 13;

impl PgOutboxSource {
    /// Connect to the store at `url` (the store created the tables) for consumer `name`.
    pub fn open(url: &str, name: &str) -> Result<PgOutboxSource, StoreError> {
        Ok(PgOutboxSource {
            pool: Pool::start(url, 1)?,
            name: name.to_string(),
            alerts_name: format!("{name}.alerts"),
        })
    }
}

fn cursor_of(c: &mut Client, name: &str) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "SELECT coalesce((SELECT last_id FROM export_cursor WHERE name = $1), 0)::int8",
        &[&name],
    )?
    .get(0))
}

fn outbox_rows(
    c: &mut Client,
    batch: &mut Batch,
    after: i64,
    limit: i64,
) -> Result<(), StoreError> {
    for row in c.query(&batch_sql(), &[&after, &limit])? {
        batch.rows += 1;
        batch.last_id = row.get(0);
        let ts = EventTime(row.get(6));
        let site: String = row.get::<_, Option<String>>(2).unwrap_or_default();
        let device: String = row.get::<_, Option<String>>(3).unwrap_or_default();
        let tags = SiteTags {
            street: row.get::<_, Option<String>>(7).unwrap_or_default(),
            kind: row.get::<_, Option<String>>(8).unwrap_or_default(),
        };
        let before = batch.body.len();
        match OutboxKind::from_i64(i64::from(row.get::<_, i16>(1))) {
            Some(OutboxKind::Reading) => {
                // A NULL interval means the reading is gone (retention ran first).
                let Some(interval_s) = row.get::<_, Option<i64>>(9) else {
                    continue;
                };
                let flags: Option<&str> = row.get(10);
                let mut reading = Reading {
                    ts,
                    boot: u32::try_from(row.get::<_, Option<i64>>(4).unwrap_or(0)).unwrap_or(0),
                    seq: u64::try_from(row.get::<_, Option<i64>>(5).unwrap_or(0)).unwrap_or(0),
                    interval_s: u32::try_from(interval_s).unwrap_or(0),
                    flags: match flags {
                        Some(f) => serde_json::from_str(f)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        None => BTreeMap::new(),
                    },
                    ..Default::default()
                };
                for (i, m) in Metric::ALL.into_iter().enumerate() {
                    reading.set(m, row.get(FIRST_METRIC + i));
                }
                line::reading(&mut batch.body, &site, &device, &tags, &reading);
            }
            Some(OutboxKind::Event) => {
                let Some(kind) = row.get::<_, Option<String>>(11) else {
                    continue;
                };
                let boot: i64 = row.get::<_, Option<i64>>(4).unwrap_or(0);
                let seq: i64 = row.get::<_, Option<i64>>(5).unwrap_or(0);
                line::event(&mut batch.body, &site, &device, &tags, &kind, boot, seq, ts);
            }
            Some(OutboxKind::CityLevel) => {
                let Some(level) = row.get::<_, Option<String>>(12) else {
                    continue;
                };
                let level = Level::from_str(&level).map_err(StoreError::Corrupt)?;
                line::city_level(&mut batch.body, level, ts);
            }
            None => tracing::warn!(id = batch.last_id, "outbox row of unknown kind skipped"),
        }
        if batch.body.len() > before {
            batch.lines += 1;
        }
    }
    Ok(())
}

fn alert_rows(c: &mut Client, batch: &mut Batch, after: i64, limit: i64) -> Result<(), StoreError> {
    for row in c.query(ALERT_SQL, &[&after, &limit])? {
        batch.rows += 1;
        batch.last_alert_id = Some(row.get(0));
        let tags = SiteTags {
            street: row.get::<_, Option<String>>(9).unwrap_or_default(),
            kind: row.get::<_, Option<String>>(10).unwrap_or_default(),
        };
        let t = line::AlertChange {
            alert_id: row.get(1),
            change: named("change", row.get(2))?,
            ts: EventTime(row.get(3)),
            state: named("state", row.get(4))?,
            severity: named("severity", row.get(5))?,
            acknowledged: row.get(6),
            site: row.get::<_, Option<String>>(7).unwrap_or_default(),
            rule: row.get::<_, Option<String>>(8).unwrap_or_default(),
        };
        line::alert(&mut batch.body, &tags, &t);
        batch.lines += 1;
    }
    Ok(())
}

impl ExportSource for PgOutboxSource {
    fn cursor(&self) -> Result<Cursor, StoreError> {
        let (name, alerts) = (self.name.clone(), self.alerts_name.clone());
        self.pool.with(move |c| {
            Ok(Cursor {
                outbox: cursor_of(c, &name)?,
                alerts: cursor_of(c, &alerts)?,
            })
        })
    }

    fn backlog(&self, cursor: Cursor) -> Result<i64, StoreError> {
        self.pool.with(move |c| {
            let r = c.query_one(
                "SELECT coalesce((SELECT max(id) FROM outbox), 0)::int8, \
                 coalesce((SELECT max(id) FROM alert_history), 0)::int8",
                &[],
            )?;
            let (outbox, alerts): (i64, i64) = (r.get(0), r.get(1));
            Ok((outbox - cursor.outbox).max(0) + (alerts - cursor.alerts).max(0))
        })
    }

    fn next_batch(&self, after: Cursor, limit: usize) -> Result<Option<Batch>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pool.with(move |c| {
            let mut batch = Batch {
                last_id: after.outbox,
                ..Default::default()
            };
            outbox_rows(c, &mut batch, after.outbox, limit)?;
            let rows = i64::try_from(batch.rows).unwrap_or(i64::MAX);
            if rows < limit {
                alert_rows(c, &mut batch, after.alerts, limit - rows)?;
            }
            Ok((batch.rows > 0).then_some(batch))
        })
    }

    fn advance(&mut self, to: Cursor) -> Result<(), StoreError> {
        let (name, alerts) = (self.name.clone(), self.alerts_name.clone());
        self.pool.with(move |c| {
            let mut tx = c.transaction()?;
            for (name, id) in [(&name, to.outbox), (&alerts, to.alerts)] {
                tx.execute(
                    "INSERT INTO export_cursor (name, last_id) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE \
                     SET last_id = greatest(export_cursor.last_id, excluded.last_id)",
                    &[name, &id],
                )?;
            }
            // One consumer per store: a second would prune up to the slowest cursor.
            tx.execute("DELETE FROM outbox WHERE id <= $1", &[&to.outbox])?;
            tx.commit()?;
            Ok(())
        })
    }
}
