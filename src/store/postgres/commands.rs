//! Commands to devices in PostgreSQL: the web's command log ([`PgCommands`]) and the ingest
//! writer's recording of device replies in its batch transaction ([`record_reply`]), so an
//! answer reaching any instance completes the command whichever instance sent it.

use super::pool::Pool;
use super::schema;
use crate::store::command_statements as sql;
use crate::store::commands::{CommandCount, CommandLog, CommandRow, NewCommand, ReplyOutcome};
use crate::store::StoreError;
use postgres::GenericClient;

/// Record a device's reply; a late answer (after the timeout) is still recorded.
pub(super) fn record_reply(
    tx: &mut impl GenericClient,
    site: &str,
    device: &str,
    reply: &dustwatch_protocol::CommandReply,
    received_ms: i64,
) -> Result<ReplyOutcome, StoreError> {
    let n = tx.execute(
        sql::RECORD_REPLY,
        &[
            &reply.id.as_str(),
            &site,
            &device,
            &received_ms,
            &reply.ok,
            &reply.detail,
        ],
    )?;
    if n > 0 {
        return Ok(ReplyOutcome::Recorded);
    }
    let known = tx.query_opt(sql::KNOWN_COMMAND, &[&reply.id.as_str(), &site, &device])?;
    Ok(match known {
        Some(_) => ReplyOutcome::Duplicate,
        None => ReplyOutcome::Unknown,
    })
}

const COLS: &str = "id, site, device, command, by_user, sent_ms, deadline_ms, state, \
    answered_ms, ok, detail, office_ts";

/// The command log on PostgreSQL.
pub struct PgCommands {
    pool: Pool,
}

impl PgCommands {
    pub fn open(url: &str) -> Result<PgCommands, StoreError> {
        // Migrated on a pool thread: the synchronous client must not run on an async worker.
        let pool = Pool::start(url, 1)?;
        pool.with(schema::migrate)?;
        Ok(PgCommands { pool })
    }
}

impl CommandLog for PgCommands {
    fn insert(&self, c: &NewCommand<'_>) -> Result<(), StoreError> {
        let (id, site, device, command, by) = (
            c.id.to_string(),
            c.site.to_string(),
            c.device.to_string(),
            c.command.to_string(),
            c.by.to_string(),
        );
        let (sent, deadline, office_ts) = (c.sent_ms, c.deadline_ms, c.office_ts);
        self.pool.with(move |c| {
            c.execute(
                "INSERT INTO commands (id, site, device, command, by_user, sent_ms, deadline_ms, \
                 state, office_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, 'sent', $8)",
                &[
                    &id, &site, &device, &command, &by, &sent, &deadline, &office_ts,
                ],
            )?;
            Ok(())
        })
    }

    fn not_sent(&self, id: &str, why: &str) -> Result<(), StoreError> {
        let (id, why) = (id.to_string(), why.to_string());
        self.pool.with(move |c| {
            c.execute(sql::NOT_SENT, &[&id, &why])?;
            Ok(())
        })
    }

    fn expire(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.pool
            .with(move |c| Ok(c.execute(sql::EXPIRE, &[&now_ms])?))
    }

    fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.pool
            .with(move |c| Ok(c.execute(sql::PRUNE, &[&before_ms])?))
    }

    fn get(&self, id: &str) -> Result<Option<CommandRow>, StoreError> {
        let id = id.to_string();
        self.pool.with(move |c| {
            let row = c.query_opt(
                &format!("SELECT {COLS} FROM commands WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(sql::command_of).transpose()?)
        })
    }

    fn list(&self, site: &str, limit: u32) -> Result<Vec<CommandRow>, StoreError> {
        let (site, limit) = (site.to_string(), i64::from(limit));
        self.pool.with(move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {COLS} FROM commands WHERE site = $1 \
                     ORDER BY sent_ms DESC, id COLLATE \"C\" LIMIT $2"
                ),
                &[&site, &limit],
            )?;
            Ok(rows.iter().map(sql::command_of).collect::<Result<_, _>>()?)
        })
    }

    fn with_ref(&self, reference: &str) -> Result<Vec<CommandRow>, StoreError> {
        let reference = reference.to_string();
        self.pool.with(move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {COLS} FROM commands WHERE command::jsonb ->> 'ref' = $1 \
                     ORDER BY sent_ms, id COLLATE \"C\""
                ),
                &[&reference],
            )?;
            Ok(rows.iter().map(sql::command_of).collect::<Result<_, _>>()?)
        })
    }

    fn answered_with_ref(
        &self,
        prefix: &str,
        since_ms: i64,
    ) -> Result<Vec<CommandRow>, StoreError> {
        let prefix = prefix.to_string();
        self.pool.with(move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {COLS} FROM commands WHERE state = 'answered' AND ok \
                     AND answered_ms >= $2 AND starts_with(command::jsonb ->> 'ref', $1) \
                     ORDER BY answered_ms, id COLLATE \"C\""
                ),
                &[&prefix, &since_ms],
            )?;
            Ok(rows.iter().map(sql::command_of).collect::<Result<_, _>>()?)
        })
    }

    fn counts_between(&self, from: i64, to: i64) -> Result<Vec<CommandCount>, StoreError> {
        self.pool.with(move |c| {
            let rows = c.query(
                "SELECT coalesce(command::jsonb ->> 'cmd', '?') AS kind, state, \
                 coalesce(ok, true) = false AS refused, count(*) FROM commands \
                 WHERE coalesce(office_ts, sent_ms) >= $1 AND coalesce(office_ts, sent_ms) < $2 \
                 GROUP BY 1, 2, 3 \
                 ORDER BY coalesce(command::jsonb ->> 'cmd', '?') COLLATE \"C\", \
                 state COLLATE \"C\", 3",
                &[&from, &to],
            )?;
            Ok(rows.iter().map(sql::count_of).collect::<Result<_, _>>()?)
        })
    }
}
