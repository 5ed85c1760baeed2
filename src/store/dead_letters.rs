//! Dead letters in SQLite: every rejected message, kept raw with its reason, bounded in all and
//! per source (the registry counts them and says which row makes room) so a flood of garbage
//! from one source neither fills the disk nor pushes out what the others' rejections say.

use super::registry::{source_of, Caps, DeadCounts, MakeRoom};
use super::StoreError;
use dustwatch_protocol::RejectReason;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// Count the stored dead letters per source.
pub(super) fn load(conn: &Connection, counts: &mut DeadCounts) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT source, count(*) FROM dead_letters GROUP BY source")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (source, n) = row?;
        counts.load(source, n);
    }
    Ok(())
}

/// Keep one rejected message, making room first as the counts decide.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert(
    tx: &Transaction,
    counts: &mut DeadCounts,
    caps: Caps,
    received_ms: i64,
    topic: &str,
    payload: &[u8],
    reason: RejectReason,
    detail: &str,
) -> Result<(), StoreError> {
    let source = source_of(topic);
    match counts.make_room(source, caps) {
        MakeRoom::Nothing => {}
        MakeRoom::OldestOfSource => {
            let n = tx
                .prepare_cached(
                    "DELETE FROM dead_letters WHERE id = \
                     (SELECT min(id) FROM dead_letters WHERE source = ?1)",
                )?
                .execute(params![source])?;
            counts.forget(source, n as u64);
        }
        MakeRoom::OldestOfAll => {
            let oldest: Option<String> = tx
                .prepare_cached(
                    "DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters) \
                     RETURNING source",
                )?
                .query_row([], |r| r.get(0))
                .optional()?;
            if let Some(s) = oldest {
                counts.forget(&s, 1);
            }
        }
    }
    tx.prepare_cached(
        "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload, source) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        received_ms,
        topic,
        reason.label(),
        detail,
        payload,
        source
    ])?;
    counts.kept(source);
    Ok(())
}

/// Delete the oldest beyond `max` in all (after a cap was lowered); the caller reloads counts.
pub(super) fn trim_all(tx: &Transaction, max: u64) -> Result<u64, StoreError> {
    let n = tx.execute(
        "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?1",
        params![i64::try_from(max).unwrap_or(i64::MAX)],
    )?;
    Ok(n as u64)
}
