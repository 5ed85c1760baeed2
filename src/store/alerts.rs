//! Alert and daily-figure persistence. The rules engine owns alert state and writes it here
//! through its own connection (alert traffic is small; SQLite serialises the two writers); the
//! web reads it through `StoreReader`. The records are the shared typed ones of `protocol`; the
//! columns hold their enums' names and event times as Unix ms.

use super::config::Synchronous;
use super::connection::open_writer;
use super::notify_outbox::NotifyChange;
use super::StoreError;
use dustwatch_protocol::NotJudged;
pub use dustwatch_protocol::{Alert, AlertChange, AlertState, Change, DayRow, EventTime, RuleKind};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::str::FromStr;

/// Alerts in one state, or the open ones (active or cleared): what a list may ask for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_state
)]
pub enum StateFilter {
    Active,
    Cleared,
    Closed,
    Open,
}

fn unknown_state(s: &str) -> String {
    format!("unknown alert state `{s}` (active, cleared, closed, open)")
}

impl StateFilter {
    /// The one stored state asked for; `None` for open, which is two.
    pub fn single(self) -> Option<AlertState> {
        match self {
            StateFilter::Active => Some(AlertState::Active),
            StateFilter::Cleared => Some(AlertState::Cleared),
            StateFilter::Closed => Some(AlertState::Closed),
            StateFilter::Open => None,
        }
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// One state, or open (active or cleared); none for all.
    pub state: Option<StateFilter>,
    pub site: Option<String>,
    pub kind: Option<RuleKind>,
    /// Only alerts open at some time in [from, to) (event time).
    pub from_ts: Option<EventTime>,
    pub to_ts: Option<EventTime>,
    pub limit: Option<u32>,
}

/// What the rules engine reads back at start: open alerts, offence totals of closed ones per
/// (site, rule), and the highest alert id.
pub type LoadedAlerts = (Vec<Alert>, Vec<(String, String, u32)>, i64);

/// The rules engine's side of the store: alerts with their history, and daily figures.
pub trait AlertWriter: Send {
    /// Upsert alerts and append their changes (all but `updated`), in one transaction.
    fn apply(&mut self, changes: &[(Change, Alert)]) -> Result<(), StoreError>;
    /// Insert or replace days' figures.
    fn save_days(&mut self, days: &[DayRow]) -> Result<(), StoreError>;
    /// What the engine restores at start.
    fn load(&self) -> Result<LoadedAlerts, StoreError>;
    /// Save how far the engine judged each site (site, minute in ms, exclusive).
    fn save_progress(&mut self, progress: &[(String, i64)]) -> Result<(), StoreError>;
    /// Every site's saved progress.
    fn progress(&self) -> Result<std::collections::HashMap<String, i64>, StoreError>;
    /// Alert changes and the progress they were decided up to, in one transaction where the
    /// store can (so a site taken over is neither judged twice nor skipped).
    fn apply_with_progress(
        &mut self,
        changes: &[(Change, Alert)],
        progress: &[(String, i64)],
    ) -> Result<(), StoreError> {
        if !changes.is_empty() {
            self.apply(changes)?;
        }
        if !progress.is_empty() {
            self.save_progress(progress)?;
        }
        Ok(())
    }
}

/// The SQLite alert writer.
pub struct AlertStore {
    conn: Connection,
}

impl AlertStore {
    pub fn open(dir: &Path) -> Result<AlertStore, StoreError> {
        Ok(AlertStore {
            conn: open_writer(dir, Synchronous::Normal)?,
        })
    }
}

impl AlertWriter for AlertStore {
    fn apply(&mut self, changes: &[(Change, Alert)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let now = chrono::Utc::now().timestamp_millis();
        for (change, a) in changes {
            // Notifications: every change but a plain evidence update; an update that raised
            // the severity is an escalation.
            let notify = if *change == Change::Updated {
                let before: Option<String> = tx
                    .prepare_cached("SELECT severity FROM alerts WHERE id = ?1")?
                    .query_row(params![a.id], |r| r.get(0))
                    .optional()?;
                before
                    .is_some_and(|b| b != a.severity.name())
                    .then_some(NotifyChange::Escalated)
            } else {
                NotifyChange::of(*change)
            };
            let evidence = a.evidence.to_string();
            tx.prepare_cached(
                "INSERT INTO alerts (id, site, rule, kind, severity, state, acknowledged, ack_by, \
                 ack_comment, opened_ts, updated_ts, cleared_ts, closed_ts, offences, level, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
                 ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, state = excluded.state, \
                 acknowledged = excluded.acknowledged, ack_by = excluded.ack_by, \
                 ack_comment = excluded.ack_comment, updated_ts = excluded.updated_ts, \
                 cleared_ts = excluded.cleared_ts, closed_ts = excluded.closed_ts, \
                 offences = excluded.offences, evidence = excluded.evidence",
            )?
            .execute(params![
                a.id,
                a.site,
                a.rule,
                a.kind.name(),
                a.severity.name(),
                a.state.name(),
                a.acknowledged,
                a.ack_by,
                a.ack_comment,
                a.opened_ts.ms(),
                a.updated_ts.ms(),
                a.cleared_ts.map(EventTime::ms),
                a.closed_ts.map(EventTime::ms),
                a.offences,
                a.level.name(),
                evidence
            ])?;
            if let Some(what) = notify {
                super::notify_outbox::push(&tx, what, a, now)?;
            }
            if *change != Change::Updated {
                tx.prepare_cached(
                    "INSERT INTO alert_history (alert_id, change, ts, state, severity, acknowledged, \
                     evidence, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    a.id,
                    change.name(),
                    a.updated_ts.ms(),
                    a.state.name(),
                    a.severity.name(),
                    a.acknowledged,
                    evidence,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn save_days(&mut self, days: &[DayRow]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for d in days {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO daily_stats (site, date, exceedance_minutes, data_minutes, \
                 activity_minutes, night_activity_minutes, sprinkling_runs, alerts_opened, \
                 alerts_closed, level_max, closed, not_judged_minutes, not_judged) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                d.site,
                d.date.to_string(),
                d.exceedance_minutes,
                d.data_minutes,
                d.activity_minutes,
                d.night_activity_minutes,
                d.sprinkling_runs,
                d.alerts_opened,
                d.alerts_closed,
                d.level_max.name(),
                d.closed,
                d.not_judged_minutes,
                not_judged_text(&d.not_judged)
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<LoadedAlerts, StoreError> {
        let open = query_alerts(
            &self.conn,
            &AlertFilter {
                state: Some(StateFilter::Open),
                ..Default::default()
            },
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT site, rule, sum(offences) FROM alerts WHERE state = 'closed' GROUP BY site, rule",
        )?;
        let history = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let max_id: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM alerts", [], |r| r.get(0))?;
        Ok((open, history, max_id))
    }

    fn save_progress(&mut self, progress: &[(String, i64)]) -> Result<(), StoreError> {
        super::progress::save(&mut self.conn, progress)
    }

    fn progress(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        super::progress::load(&self.conn)
    }
}

/// A column holding an enum's name (or a date), parsed; a name this build does not know is a
/// conversion error naming the column, not a silently different value.
pub(super) fn named<T>(r: &Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = r.get(i)?;
    text.parse().map_err(|e: T::Err| {
        let why = format!("`{text}`: {e}");
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, why.into())
    })
}

/// What a day could not judge, as the column keeps it (JSON text).
pub(super) fn not_judged_text(list: &[NotJudged]) -> String {
    serde_json::to_string(list).expect("plain structs and enums always serialize")
}

/// The column read back; text that is not such a list is an error naming it, never an empty list.
fn not_judged_of(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<NotJudged>> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        let why = format!("`{text}`: {e}");
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, why.into())
    })
}

/// Evidence is JSON the store does not interpret; text that is not JSON reads as null.
fn evidence_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn alert_from_row(r: &Row<'_>) -> rusqlite::Result<Alert> {
    let evidence: String = r.get(15)?;
    Ok(Alert {
        id: r.get(0)?,
        site: r.get(1)?,
        rule: r.get(2)?,
        kind: named(r, 3)?,
        severity: named(r, 4)?,
        state: named(r, 5)?,
        acknowledged: r.get(6)?,
        ack_by: r.get(7)?,
        ack_comment: r.get(8)?,
        opened_ts: EventTime(r.get(9)?),
        updated_ts: EventTime(r.get(10)?),
        cleared_ts: r.get::<_, Option<i64>>(11)?.map(EventTime),
        closed_ts: r.get::<_, Option<i64>>(12)?.map(EventTime),
        offences: r.get(13)?,
        level: named(r, 14)?,
        evidence: evidence_of(&evidence),
    })
}

const ALERT_COLS: &str =
    "id, site, rule, kind, severity, state, acknowledged, ack_by, ack_comment, \
     opened_ts, updated_ts, cleared_ts, closed_ts, offences, level, evidence";

pub(super) fn query_alerts(c: &Connection, f: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
    let (state_sql, state) = match f.state.map(|s| (s, s.single())) {
        None => ("1", None),
        Some((_, None)) => ("state IN ('active', 'cleared')", None),
        Some((_, Some(s))) => ("state = ?1", Some(s.name())),
    };
    let sql = format!(
        "SELECT {ALERT_COLS} FROM alerts WHERE {state_sql} \
         AND (?2 IS NULL OR site = ?2) AND (?3 IS NULL OR kind = ?3) \
         AND (?4 IS NULL OR coalesce(closed_ts, 9223372036854775807) >= ?4) \
         AND (?5 IS NULL OR opened_ts < ?5) \
         ORDER BY opened_ts DESC, id DESC LIMIT ?6"
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(
        params![
            state,
            f.site,
            f.kind.map(RuleKind::name),
            f.from_ts.map(EventTime::ms),
            f.to_ts.map(EventTime::ms),
            f.limit.map_or(-1, i64::from)
        ],
        alert_from_row,
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn query_history(c: &Connection, id: i64) -> Result<Vec<AlertChange>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT alert_id, change, ts, state, severity, acknowledged, evidence FROM alert_history \
         WHERE alert_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        let evidence: String = r.get(6)?;
        Ok(AlertChange {
            alert_id: r.get(0)?,
            change: named(r, 1)?,
            ts: EventTime(r.get(2)?),
            state: named(r, 3)?,
            severity: named(r, 4)?,
            acknowledged: r.get(5)?,
            evidence: evidence_of(&evidence),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn query_days(
    c: &Connection,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<DayRow>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT site, date, exceedance_minutes, data_minutes, activity_minutes, \
         night_activity_minutes, sprinkling_runs, alerts_opened, alerts_closed, level_max, closed, \
         not_judged_minutes, not_judged \
         FROM daily_stats WHERE date >= ?1 AND date <= ?2 ORDER BY date, site",
    )?;
    let rows = stmt.query_map(params![from.to_string(), to.to_string()], |r| {
        Ok(DayRow {
            site: r.get(0)?,
            date: named(r, 1)?,
            exceedance_minutes: r.get(2)?,
            data_minutes: r.get(3)?,
            activity_minutes: r.get(4)?,
            night_activity_minutes: r.get(5)?,
            sprinkling_runs: r.get(6)?,
            alerts_opened: r.get(7)?,
            alerts_closed: r.get(8)?,
            level_max: named(r, 9)?,
            closed: r.get(10)?,
            not_judged_minutes: r.get(11)?,
            not_judged: not_judged_of(r, 12)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
