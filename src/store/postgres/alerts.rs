//! Alerts, their history and daily figures in PostgreSQL: the rules engine's writer
//! ([`PgAlertStore`], its own connection) and the queries the reader shares.

use super::config::connect;
use crate::store::alerts::not_judged_text;
use crate::store::alerts::{
    Alert, AlertChange, AlertFilter, AlertWriter, Change, DayRow, EventTime, LoadedAlerts,
    RuleKind, StateFilter,
};
use crate::store::notify_outbox::NotifyChange;
use crate::store::sql::u32_of;
use crate::store::StoreError;
use dustwatch_protocol::NotJudged;
use postgres::{Client, GenericClient, Row};
use std::str::FromStr;

/// The rules engine's alert writer.
pub struct PgAlertStore {
    client: std::cell::RefCell<Client>,
    url: String,
}

impl PgAlertStore {
    pub fn open(url: &str) -> Result<PgAlertStore, StoreError> {
        Ok(PgAlertStore {
            client: std::cell::RefCell::new(connect(url)?),
            url: url.to_string(),
        })
    }

    /// The connection, opened again first when it was lost (the rules engine logs a failed
    /// write and carries on, so the next one must find a live connection).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.get_mut().is_closed() {
            *self.client.get_mut() = connect(&self.url)?;
        }
        Ok(self.client.get_mut())
    }
}

impl AlertWriter for PgAlertStore {
    fn apply(&mut self, changes: &[(Change, Alert)]) -> Result<(), StoreError> {
        self.apply_with_progress(changes, &[])
    }

    fn apply_with_progress(
        &mut self,
        changes: &[(Change, Alert)],
        progress: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.client()?.transaction()?;
        if !progress.is_empty() {
            super::progress::save(&mut tx, progress)?;
        }
        // Several instances' engines append history: ids become visible in id order.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&super::schema::ALERT_HISTORY_LOCK],
        )?;
        let now = chrono::Utc::now().timestamp_millis();
        for (change, a) in changes {
            // Notifications, as in the SQLite store: every change but a plain evidence update;
            // an update that raised the severity is an escalation.
            let notify = if *change == Change::Updated {
                let before = tx.query_opt("SELECT severity FROM alerts WHERE id = $1", &[&a.id])?;
                before
                    .is_some_and(|b| b.get::<_, &str>(0) != a.severity.name())
                    .then_some(NotifyChange::Escalated)
            } else {
                NotifyChange::of(*change)
            };
            let evidence = a.evidence.to_string();
            let offences = i64::from(a.offences);
            let (kind, severity, state, level) = (
                a.kind.name(),
                a.severity.name(),
                a.state.name(),
                a.level.name(),
            );
            let (opened, updated) = (a.opened_ts.ms(), a.updated_ts.ms());
            let (cleared, closed) = (
                a.cleared_ts.map(EventTime::ms),
                a.closed_ts.map(EventTime::ms),
            );
            tx.execute(
                "INSERT INTO alerts (id, site, rule, kind, severity, state, acknowledged, ack_by, \
                 ack_comment, opened_ts, updated_ts, cleared_ts, closed_ts, offences, level, evidence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, state = excluded.state, \
                 acknowledged = excluded.acknowledged, ack_by = excluded.ack_by, \
                 ack_comment = excluded.ack_comment, updated_ts = excluded.updated_ts, \
                 cleared_ts = excluded.cleared_ts, closed_ts = excluded.closed_ts, \
                 offences = excluded.offences, evidence = excluded.evidence",
                &[
                    &a.id, &a.site, &a.rule, &kind, &severity, &state, &a.acknowledged,
                    &a.ack_by, &a.ack_comment, &opened, &updated, &cleared,
                    &closed, &offences, &level, &evidence,
                ],
            )?;
            if let Some(what) = notify {
                super::notify_outbox::push(&mut tx, what, a, now)?;
            }
            if *change != Change::Updated {
                tx.execute(
                    "INSERT INTO alert_history (alert_id, change, ts, state, severity, \
                     acknowledged, evidence, recorded_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &a.id,
                        &change.name(),
                        &updated,
                        &state,
                        &severity,
                        &a.acknowledged,
                        &evidence,
                        &now,
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn save_days(&mut self, days: &[DayRow]) -> Result<(), StoreError> {
        let mut tx = self.client()?.transaction()?;
        for d in days {
            let n = |v: u32| i64::from(v);
            let (date, level_max) = (d.date.to_string(), d.level_max.name());
            tx.execute(
                "INSERT INTO daily_stats (site, date, exceedance_minutes, data_minutes, \
                 activity_minutes, night_activity_minutes, sprinkling_runs, alerts_opened, \
                 alerts_closed, level_max, closed, not_judged_minutes, not_judged) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (site, date) DO UPDATE SET \
                 exceedance_minutes = excluded.exceedance_minutes, \
                 data_minutes = excluded.data_minutes, activity_minutes = excluded.activity_minutes, \
                 night_activity_minutes = excluded.night_activity_minutes, \
                 sprinkling_runs = excluded.sprinkling_runs, alerts_opened = excluded.alerts_opened, \
                 alerts_closed = excluded.alerts_closed, level_max = excluded.level_max, \
                 closed = excluded.closed, not_judged_minutes = excluded.not_judged_minutes, \
                 not_judged = excluded.not_judged",
                &[
                    &d.site,
                    &date,
                    &n(d.exceedance_minutes),
                    &n(d.data_minutes),
                    &n(d.activity_minutes),
                    &n(d.night_activity_minutes),
                    &n(d.sprinkling_runs),
                    &n(d.alerts_opened),
                    &n(d.alerts_closed),
                    &level_max,
                    &d.closed,
                    &n(d.not_judged_minutes),
                    &not_judged_text(&d.not_judged),
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<LoadedAlerts, StoreError> {
        let mut client = self.client.borrow_mut();
        let open = query_alerts(
            &mut *client,
            &AlertFilter {
                state: Some(StateFilter::Open),
                ..Default::default()
            },
        )?;
        let history = client
            .query(
                "SELECT site, rule, sum(offences)::int8 FROM alerts WHERE state = 'closed' \
                 GROUP BY site, rule",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), u32_of(r.get(2))))
            .collect();
        let max_id: i64 = client
            .query_one("SELECT coalesce(max(id), 0)::int8 FROM alerts", &[])?
            .get(0);
        Ok((open, history, max_id))
    }

    fn save_progress(&mut self, progress: &[(String, i64)]) -> Result<(), StoreError> {
        self.apply_with_progress(&[], progress)
    }

    fn progress(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        super::progress::load(&mut self.client.borrow_mut())
    }
}

const ALERT_COLS: &str = "id, site, rule, kind, severity, state, acknowledged, ack_by, \
     ack_comment, opened_ts, updated_ts, cleared_ts, closed_ts, offences, level, evidence";

fn evidence_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A column holding an enum's name (or a date), parsed; a name this build does not know is an
/// error naming the column and the text.
pub(super) fn named<T>(r: &Row, i: usize) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = r.try_get(i)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("column {i} `{text}`: {e}")))
}

/// What a day could not judge, read back from its JSON text (an error naming it when it is not).
fn not_judged_of(r: &Row, i: usize) -> Result<Vec<NotJudged>, StoreError> {
    let text: String = r.try_get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("column {i} `{text}`: {e}")))
}

fn alert_from_row(r: &Row) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: r.try_get(0)?,
        site: r.try_get(1)?,
        rule: r.try_get(2)?,
        kind: named(r, 3)?,
        severity: named(r, 4)?,
        state: named(r, 5)?,
        acknowledged: r.try_get(6)?,
        ack_by: r.try_get(7)?,
        ack_comment: r.try_get(8)?,
        opened_ts: EventTime(r.try_get(9)?),
        updated_ts: EventTime(r.try_get(10)?),
        cleared_ts: r.try_get::<_, Option<i64>>(11)?.map(EventTime),
        closed_ts: r.try_get::<_, Option<i64>>(12)?.map(EventTime),
        offences: u32_of(r.try_get(13)?),
        level: named(r, 14)?,
        evidence: evidence_of(r.try_get(15)?),
    })
}

pub(super) fn query_alerts(
    c: &mut impl GenericClient,
    f: &AlertFilter,
) -> Result<Vec<Alert>, StoreError> {
    let (state_sql, state) = match f.state.map(|s| (s, s.single())) {
        None => ("true", None),
        Some((_, None)) => ("state IN ('active', 'cleared')", None),
        Some((_, Some(s))) => ("state = $1", Some(s.name())),
    };
    // `$1` is always bound (NULL when unused) so the parameter numbers stay fixed.
    let sql = format!(
        "SELECT {ALERT_COLS} FROM alerts WHERE {state_sql} AND ($1::text IS NULL OR true) \
         AND ($2::text IS NULL OR site = $2) AND ($3::text IS NULL OR kind = $3) \
         AND ($4::int8 IS NULL OR coalesce(closed_ts, 9223372036854775807) >= $4) \
         AND ($5::int8 IS NULL OR opened_ts < $5) \
         ORDER BY opened_ts DESC, id DESC LIMIT $6"
    );
    let limit: Option<i64> = f.limit.map(i64::from);
    let (from, to) = (f.from_ts.map(EventTime::ms), f.to_ts.map(EventTime::ms));
    let kind = f.kind.map(RuleKind::name);
    let rows = c.query(&sql, &[&state, &f.site, &kind, &from, &to, &limit])?;
    rows.iter().map(alert_from_row).collect()
}

pub(super) fn query_history(
    c: &mut impl GenericClient,
    id: i64,
) -> Result<Vec<AlertChange>, StoreError> {
    let rows = c.query(
        "SELECT alert_id, change, ts, state, severity, acknowledged, evidence FROM alert_history \
         WHERE alert_id = $1 ORDER BY id",
        &[&id],
    )?;
    rows.iter()
        .map(|r| {
            Ok(AlertChange {
                alert_id: r.try_get(0)?,
                change: named(r, 1)?,
                ts: EventTime(r.try_get(2)?),
                state: named(r, 3)?,
                severity: named(r, 4)?,
                acknowledged: r.try_get(5)?,
                evidence: evidence_of(r.try_get(6)?),
            })
        })
        .collect()
}

pub(super) fn query_days(
    c: &mut impl GenericClient,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<DayRow>, StoreError> {
    let (from, to) = (from.to_string(), to.to_string());
    let rows = c.query(
        "SELECT site, date, exceedance_minutes, data_minutes, activity_minutes, \
         night_activity_minutes, sprinkling_runs, alerts_opened, alerts_closed, level_max, closed, \
         not_judged_minutes, not_judged \
         FROM daily_stats WHERE date >= $1 AND date <= $2 ORDER BY date, site",
        &[&from, &to],
    )?;
    rows.iter()
        .map(|r| {
            Ok(DayRow {
                site: r.try_get(0)?,
                date: named(r, 1)?,
                exceedance_minutes: u32_of(r.try_get(2)?),
                data_minutes: u32_of(r.try_get(3)?),
                activity_minutes: u32_of(r.try_get(4)?),
                night_activity_minutes: u32_of(r.try_get(5)?),
                sprinkling_runs: u32_of(r.try_get(6)?),
                alerts_opened: u32_of(r.try_get(7)?),
                alerts_closed: u32_of(r.try_get(8)?),
                level_max: named(r, 9)?,
                closed: r.try_get(10)?,
                not_judged_minutes: u32_of(r.try_get(11)?),
                not_judged: not_judged_of(r, 12)?,
            })
        })
        .collect()
}
