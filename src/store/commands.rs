//! Commands sent to devices and what became of them: sent, answered (ok or not), or timed out.
//! The web inserts and lists through a [`CommandLog`] (SQLite here, PostgreSQL in
//! `store::postgres::commands`); device replies are recorded by the ingest writer in its batch
//! transaction through [`record_reply`] (SQLite) or its PostgreSQL twin.

use super::command_statements as sql;
use super::config::Synchronous;
use super::connection::open_writer;
use super::sql::sqlite;
use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use std::path::Path;

/// Where a command stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CommandState {
    /// Published; no answer yet.
    Sent,
    /// The device answered (see `ok`).
    Answered,
    /// No answer within the timeout.
    TimedOut,
    /// Never left the aggregator (its publish queue was full).
    NotSent,
}

impl CommandState {
    pub fn name(self) -> &'static str {
        self.into()
    }
    fn parse(s: &str) -> Option<CommandState> {
        s.parse().ok()
    }
}

/// A command as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandRow {
    pub id: String,
    pub site: String,
    pub device: String,
    /// The command as sent (`{"cmd":"sprinkle","duration_s":600}`).
    pub command: serde_json::Value,
    /// Who asked for it.
    pub by: String,
    /// Wall-clock time it was published, Unix ms.
    pub sent_ms: i64,
    /// Unanswered by then, it times out.
    pub deadline_ms: i64,
    pub state: CommandState,
    pub answered_ms: Option<i64>,
    pub ok: Option<bool>,
    pub detail: Option<String>,
    /// When it was sent on the office's clock (the data's, see `crate::commands`); older rows
    /// have none.
    pub office_ts: Option<i64>,
}

/// A new command, before it is stored.
#[derive(Debug, Clone)]
pub struct NewCommand<'a> {
    pub id: &'a str,
    pub site: &'a str,
    pub device: &'a str,
    pub command: &'a serde_json::Value,
    pub by: &'a str,
    pub sent_ms: i64,
    pub deadline_ms: i64,
    pub office_ts: i64,
}

/// What a reply did to its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The command is answered now.
    Recorded,
    /// It was answered before (a redelivered reply).
    Duplicate,
    /// No such command was sent to this device.
    Unknown,
}

/// Record a device's reply inside the ingest writer's transaction. A late answer (after the
/// timeout) is still recorded: the office wants to know the device did act.
pub fn record_reply(
    tx: &Transaction,
    site: &str,
    device: &str,
    reply: &dustwatch_protocol::CommandReply,
    received_ms: i64,
) -> Result<ReplyOutcome, StoreError> {
    let n = tx
        .prepare_cached(&sqlite(sql::RECORD_REPLY))?
        .execute(params![
            reply.id.as_str(),
            site,
            device,
            received_ms,
            reply.ok,
            reply.detail
        ])?;
    if n > 0 {
        return Ok(ReplyOutcome::Recorded);
    }
    let known: Option<String> = tx
        .prepare_cached(&sqlite(sql::KNOWN_COMMAND))?
        .query_row(params![reply.id.as_str(), site, device], |r| r.get(0))
        .optional()?;
    Ok(match known {
        Some(_) => ReplyOutcome::Duplicate,
        None => ReplyOutcome::Unknown,
    })
}

impl super::sqlite_batch::BatchWrite<'_> {
    /// A device's reply, in the ingest writer's batch: answered, a duplicate, or (never sent to
    /// that device) a `store_refused` dead letter.
    pub(super) fn command_reply(
        &mut self,
        tx: &Transaction,
        known: &mut super::known::Known,
        site: &str,
        device: &str,
        reply: &dustwatch_protocol::CommandReply,
    ) -> Result<(), StoreError> {
        match record_reply(tx, site, device, reply, self.received)? {
            ReplyOutcome::Recorded => {
                self.out.other += 1;
                if let Some(f) = self.out.fresh.last_mut() {
                    *f = true;
                }
            }
            ReplyOutcome::Duplicate => self.out.duplicates += 1,
            ReplyOutcome::Unknown => {
                let reason = dustwatch_protocol::RejectReason::StoreRefused;
                // The store does not know the configured root: site and device say where from.
                known.dead_letter(
                    tx,
                    self.received,
                    &format!("{site}/{device}/reply"),
                    &reply.encode(),
                    reason,
                    &format!("no command `{}` was sent to {site}/{device}", reply.id),
                )?;
                *self.rejected.entry(reason).or_default() += 1;
            }
        }
        Ok(())
    }
}

/// The command log of the web side: SQLite ([`CommandStore`]) or PostgreSQL
/// (`store::postgres::PgCommands`), so every instance on a database sees every command.
pub trait CommandLog: Send + Sync {
    /// Store a command about to be published (state `sent`).
    fn insert(&self, c: &NewCommand<'_>) -> Result<(), StoreError>;
    /// Mark a command that could not be published.
    fn not_sent(&self, id: &str, why: &str) -> Result<(), StoreError>;
    /// Time out every command still unanswered at `now_ms`; returns how many.
    fn expire(&self, now_ms: i64) -> Result<u64, StoreError>;
    /// Delete commands sent before `before_ms` (retention).
    fn prune(&self, before_ms: i64) -> Result<u64, StoreError>;
    fn get(&self, id: &str) -> Result<Option<CommandRow>, StoreError>;
    /// A site's commands, newest first.
    fn list(&self, site: &str, limit: u32) -> Result<Vec<CommandRow>, StoreError>;
    /// The commands that carry `ref` (an order's or a notice's), oldest first.
    fn with_ref(&self, reference: &str) -> Result<Vec<CommandRow>, StoreError>;
    /// Commands answered with `ok` from `since_ms` on (the answer's time) whose `ref` starts
    /// with `prefix`, oldest answer first.
    fn answered_with_ref(&self, prefix: &str, since_ms: i64)
        -> Result<Vec<CommandRow>, StoreError>;
    /// How many commands of each kind (`cmd`) sent in [from, to) of the office's clock ended in
    /// each state, by kind then state.
    fn counts_between(&self, from: i64, to: i64) -> Result<Vec<CommandCount>, StoreError>;
}

/// (kind, state, refused by the device, count).
pub type CommandCount = (String, CommandState, bool, u64);

impl CommandState {
    /// As stored: only the command modules write states; an unknown one reads as timed out,
    /// never as pending.
    pub(crate) fn read(s: &str) -> CommandState {
        CommandState::parse(s).unwrap_or(CommandState::TimedOut)
    }
}

/// The command log on SQLite, on its own connection (command traffic is small and SQLite
/// serialises the writers).
pub struct CommandStore {
    conn: std::sync::Mutex<Connection>,
}

const COLS: &str = "id, site, device, command, by, sent_ms, deadline_ms, state, answered_ms, ok, \
    detail, office_ts";

impl CommandStore {
    pub fn open(dir: &Path) -> Result<CommandStore, StoreError> {
        Ok(CommandStore {
            conn: std::sync::Mutex::new(open_writer(dir, Synchronous::Normal)?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolled back.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CommandLog for CommandStore {
    fn insert(&self, c: &NewCommand<'_>) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO commands (id, site, device, command, by, sent_ms, deadline_ms, state, \
             office_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sent', ?8)",
            params![
                c.id,
                c.site,
                c.device,
                c.command.to_string(),
                c.by,
                c.sent_ms,
                c.deadline_ms,
                c.office_ts
            ],
        )?;
        Ok(())
    }

    fn not_sent(&self, id: &str, why: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(&sqlite(sql::NOT_SENT), params![id, why])?;
        Ok(())
    }

    fn expire(&self, now_ms: i64) -> Result<u64, StoreError> {
        let n = self.conn().execute(&sqlite(sql::EXPIRE), params![now_ms])?;
        Ok(n as u64)
    }

    fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute(&sqlite(sql::PRUNE), params![before_ms])?;
        Ok(n as u64)
    }

    fn get(&self, id: &str) -> Result<Option<CommandRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM commands WHERE id = ?1"),
                params![id],
                |r| sql::command_of(r),
            )
            .optional()?)
    }

    fn list(&self, site: &str, limit: u32) -> Result<Vec<CommandRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLS} FROM commands WHERE site = ?1 ORDER BY sent_ms DESC, id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![site, limit], |r| sql::command_of(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn with_ref(&self, reference: &str) -> Result<Vec<CommandRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLS} FROM commands WHERE json_extract(command, '$.ref') = ?1 \
             ORDER BY sent_ms, id"
        ))?;
        let rows = stmt.query_map(params![reference], |r| sql::command_of(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn answered_with_ref(
        &self,
        prefix: &str,
        since_ms: i64,
    ) -> Result<Vec<CommandRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLS} FROM commands WHERE state = 'answered' AND ok = 1 \
             AND answered_ms >= ?2 AND substr(json_extract(command, '$.ref'), 1, length(?1)) = ?1 \
             ORDER BY answered_ms, id"
        ))?;
        let rows = stmt.query_map(params![prefix, since_ms], |r| sql::command_of(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn counts_between(&self, from: i64, to: i64) -> Result<Vec<CommandCount>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT coalesce(json_extract(command, '$.cmd'), '?'), state, coalesce(ok, 1) = 0, \
             count(*) FROM commands \
             WHERE coalesce(office_ts, sent_ms) >= ?1 AND coalesce(office_ts, sent_ms) < ?2 \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )?;
        let rows = stmt.query_map(params![from, to], |r| sql::count_of(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{db_path, SqliteStore, StoreConfig};
    use crate::store::{Record, StoreWriter};
    use dustwatch_protocol::{CommandId, CommandReply, RejectReason};

    fn config(dir: &Path) -> StoreConfig {
        StoreConfig {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    fn reply(id: &str) -> Record {
        Record::CommandReply {
            site: "s1".into(),
            device: "d1".into(),
            reply: CommandReply {
                id: CommandId::try_from(id.to_string()).expect("valid id"),
                ok: true,
                detail: "done".into(),
                ts: None,
            },
        }
    }

    #[test]
    fn a_store_of_schema_4_gains_the_command_and_notification_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SqliteStore::open(config(dir.path()), false).expect("open"));
        let conn = Connection::open(db_path(dir.path())).expect("sqlite");
        conn.execute_batch(
            "DROP TABLE commands; DROP TABLE notify_outbox; DROP TABLE notify_delivery;
             DROP TABLE notify_cursor; PRAGMA user_version = 4;",
        )
        .expect("back to schema 4");
        drop(conn);
        let store = CommandStore::open(dir.path()).expect("reopen");
        let version: i64 = store
            .conn()
            .query_row("SELECT user_version FROM pragma_user_version", [], |r| {
                r.get(0)
            })
            .expect("version");
        assert_eq!(version, crate::store::schema::VERSION);
        assert!(version >= 8);
        store.expire(0).expect("the commands table is there");
    }

    #[test]
    fn replies_answer_their_command_once_and_strays_become_dead_letters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SqliteStore::open(config(dir.path()), false).expect("open");
        let commands = CommandStore::open(dir.path()).expect("commands");
        let cmd = serde_json::json!({"cmd": "reboot"});
        commands
            .insert(&NewCommand {
                id: "c1",
                site: "s1",
                device: "d1",
                command: &cmd,
                by: "test",
                sent_ms: 1_000,
                deadline_ms: 2_000,
                office_ts: 1_000,
            })
            .expect("insert");
        // Timed out first, answered late: the answer is still recorded.
        assert_eq!(commands.expire(5_000).expect("expire"), 1);
        let out = writer.write_batch(&[reply("c1")]).expect("write");
        assert_eq!(out.fresh, vec![true]);
        let row = commands.get("c1").expect("get").expect("stored");
        assert_eq!(row.state, CommandState::Answered);
        assert_eq!(row.ok, Some(true));
        // Redelivered: a duplicate. Never sent: a dead letter with its reason.
        let out = writer
            .write_batch(&[reply("c1"), reply("nope")])
            .expect("write");
        assert_eq!(out.duplicates, 1);
        assert_eq!(out.rejected, vec![(RejectReason::StoreRefused, 1)]);
        assert_eq!(commands.list("s1", 10).expect("list").len(), 1);
    }

    #[test]
    fn a_schema_8_store_gains_office_time_and_commands_are_found_by_reference_and_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SqliteStore::open(config(dir.path()), false).expect("open"));
        let conn = Connection::open(db_path(dir.path())).expect("sqlite");
        conn.execute_batch(
            "DROP INDEX commands_by_office_ts; ALTER TABLE commands DROP COLUMN office_ts;
             PRAGMA user_version = 8;",
        )
        .expect("back to schema 8");
        drop(conn);
        let store = CommandStore::open(dir.path()).expect("migrated");
        let add = |id: &str, cmd: serde_json::Value, office_ts: i64| {
            store
                .insert(&NewCommand {
                    id,
                    site: "s1",
                    device: "d1",
                    command: &cmd,
                    by: "li",
                    sent_ms: 5_000_000,
                    deadline_ms: 5_060_000,
                    office_ts,
                })
                .expect("insert");
        };
        add(
            "a",
            serde_json::json!({"cmd": "stop_work", "ref": "order-1"}),
            100,
        );
        add(
            "b",
            serde_json::json!({"cmd": "stop_work", "ref": "notice-1"}),
            200,
        );
        add(
            "c",
            serde_json::json!({"cmd": "resume_work", "ref": "order-1"}),
            300,
        );
        add(
            "d",
            serde_json::json!({"cmd": "sprinkle", "duration_s": 60}),
            9_000,
        );
        let ids = |rows: Vec<CommandRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.with_ref("order-1").expect("by ref")), ["a", "c"]);
        assert_eq!(
            ids(store.with_ref("order-11").expect("by ref")),
            Vec::<String>::new()
        );
        store
            .conn()
            .execute(
                "UPDATE commands SET state = 'answered', ok = 1, answered_ms = 7 WHERE id IN ('b', 'a')",
                [],
            )
            .expect("answer");
        assert_eq!(
            ids(store.answered_with_ref("notice-", 0).expect("answered")),
            ["b"]
        );
        assert!(store
            .answered_with_ref("notice-", 8)
            .expect("answered")
            .is_empty());
        assert_eq!(store.expire(5_060_000).expect("expire"), 2);
        // The day is the office's clock's, not the wall clock's `sent_ms`.
        assert_eq!(
            store.counts_between(0, 1_000).expect("counts"),
            vec![
                ("resume_work".to_string(), CommandState::TimedOut, false, 1),
                ("stop_work".to_string(), CommandState::Answered, false, 2),
            ]
        );
    }
}
