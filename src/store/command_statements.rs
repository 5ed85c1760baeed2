//! The command log's statements and row mappings, written once for SQLite and PostgreSQL
//! (`$n` placeholders; [`super::sql::sqlite`] turns them into SQLite's). The backends keep their
//! own text where the dialects differ: the sender's column (`by`, `by_user` in PostgreSQL),
//! reading the command's JSON, and collation.

use super::commands::{CommandCount, CommandRow, CommandState};
use super::sql::AnyRow;

/// A device's reply answers its command, unless answered before; a late one still counts.
pub(crate) const RECORD_REPLY: &str =
    "UPDATE commands SET state = 'answered', answered_ms = $4, ok = $5, detail = $6 \
     WHERE id = $1 AND site = $2 AND device = $3 AND state IN ('sent', 'timed_out')";
pub(crate) const KNOWN_COMMAND: &str =
    "SELECT state FROM commands WHERE id = $1 AND site = $2 AND device = $3";
pub(crate) const NOT_SENT: &str =
    "UPDATE commands SET state = 'not_sent', detail = $2 WHERE id = $1";
pub(crate) const EXPIRE: &str =
    "UPDATE commands SET state = 'timed_out' WHERE state = 'sent' AND deadline_ms <= $1";
pub(crate) const PRUNE: &str = "DELETE FROM commands WHERE sent_ms < $1";

/// A row of `id, site, device, command, by, sent_ms, deadline_ms, state, answered_ms, ok,
/// detail, office_ts`.
pub(crate) fn command_of<R: AnyRow>(r: &R) -> Result<CommandRow, R::Error> {
    let command: String = r.col(3)?;
    let state: String = r.col(7)?;
    Ok(CommandRow {
        id: r.col(0)?,
        site: r.col(1)?,
        device: r.col(2)?,
        command: serde_json::from_str(&command).unwrap_or(serde_json::Value::Null),
        by: r.col(4)?,
        sent_ms: r.col(5)?,
        deadline_ms: r.col(6)?,
        state: CommandState::read(&state),
        answered_ms: r.col(8)?,
        ok: r.col(9)?,
        detail: r.col(10)?,
        office_ts: r.col(11)?,
    })
}

/// A row of `kind, state, refused, count`.
pub(crate) fn count_of<R: AnyRow>(r: &R) -> Result<CommandCount, R::Error> {
    let state: String = r.col(1)?;
    Ok((
        r.col(0)?,
        CommandState::read(&state),
        r.col(2)?,
        u64::try_from(r.col::<i64>(3)?).unwrap_or(0),
    ))
}
