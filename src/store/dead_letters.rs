//! Dead letters: every rejected message, kept raw with its reason, bounded in all and per
//! source so a flood of garbage from one source neither fills the disk nor pushes out what the
//! others' rejections say.

use super::StoreError;
use dustwatch_protocol::RejectReason;
use rusqlite::{params, Connection, Transaction};
use std::collections::HashMap;

/// Caps on the dead-letter table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caps {
    pub total: u64,
    pub per_source: u64,
}

/// Rows per source, kept in memory so an insert never counts the table.
#[derive(Debug, Default)]
pub(super) struct DeadLetters {
    total: u64,
    by_source: HashMap<String, u64>,
}

impl DeadLetters {
    pub fn load(conn: &Connection) -> Result<DeadLetters, StoreError> {
        let mut stmt = conn.prepare("SELECT source, count(*) FROM dead_letters GROUP BY source")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = DeadLetters::default();
        for row in rows {
            let (source, n) = row?;
            let n = n.max(0) as u64;
            out.total += n;
            out.by_source.insert(source, n);
        }
        Ok(out)
    }

    /// Keep one rejected message, making room first: the source's oldest when it is at its
    /// cap, else the oldest of all when the table is.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        tx: &Transaction,
        caps: Caps,
        received_ms: i64,
        topic: &str,
        payload: &[u8],
        reason: RejectReason,
        detail: &str,
    ) -> Result<(), StoreError> {
        let source = source_of(topic);
        if self.by_source.get(source).copied().unwrap_or(0) >= caps.per_source.max(1) {
            let n = tx
                .prepare_cached(
                    "DELETE FROM dead_letters WHERE id = \
                     (SELECT min(id) FROM dead_letters WHERE source = ?1)",
                )?
                .execute(params![source])?;
            self.forget(source, n as u64);
        } else if self.total >= caps.total.max(1) {
            let oldest: Option<String> = tx
                .prepare_cached(
                    "DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters) \
                     RETURNING source",
                )?
                .query_row([], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            if let Some(s) = oldest {
                self.forget(&s, 1);
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
        self.total += 1;
        *self.by_source.entry(source.to_string()).or_default() += 1;
        Ok(())
    }

    fn forget(&mut self, source: &str, n: u64) {
        self.total = self.total.saturating_sub(n);
        if let Some(count) = self.by_source.get_mut(source) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                self.by_source.remove(source);
            }
        }
    }
}

/// Delete the oldest beyond `max` in all (after a cap was lowered); the caller reloads counts.
pub(super) fn trim_all(tx: &Transaction, max: u64) -> Result<u64, StoreError> {
    let n = tx.execute(
        "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?1",
        params![i64::try_from(max).unwrap_or(i64::MAX)],
    )?;
    Ok(n as u64)
}

/// Who sent a rejected message, as far as the topic tells: the site level of an MQTT topic
/// (`dust/v1/{site}`), the peer address of an HJ 212 connection without its port, else the
/// topic itself.
pub(super) fn source_of(topic: &str) -> &str {
    if let Some(peer) = topic.strip_prefix("hj212-tcp://") {
        let host = match peer.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => peer,
        };
        return &topic[..topic.len() - peer.len() + host.len()];
    }
    match topic.match_indices('/').nth(2) {
        Some((i, _)) => &topic[..i],
        None => topic,
    }
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn sources() {
        assert_eq!(source_of("dust/v1/s1/d1/reading"), "dust/v1/s1");
        assert_eq!(source_of("dust/v1/city/level"), "dust/v1/city");
        assert_eq!(
            source_of("hj212-tcp://127.0.0.1:40000"),
            "hj212-tcp://127.0.0.1"
        );
        assert_eq!(source_of("hj212-tcp://[::1]:40000"), "hj212-tcp://[::1]");
        assert_eq!(source_of("junk"), "junk");
        assert_eq!(source_of("a/b"), "a/b");
    }
}
