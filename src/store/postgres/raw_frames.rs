//! HJ 212 frames kept as dead letters, read from PostgreSQL: the same query as the SQLite
//! store's (`store/raw_frames.rs`), in PostgreSQL's words.

use crate::store::raw_frames::{RawFrameQuery, RawFrameRow, MAX_LIMIT};
use crate::store::StoreError;
use postgres::Client;

pub(super) fn query(c: &mut Client, q: &RawFrameQuery) -> Result<Vec<RawFrameRow>, StoreError> {
    let reasons: Vec<String> = q.reasons.iter().map(|r| r.label().to_string()).collect();
    // `MN=x;` in the header; the CP block, where `;` also separates items, starts later with
    // `CP=`, and no factor code is `MN`.
    let needle: Option<Vec<u8>> = q.mn.as_ref().map(|mn| format!("MN={mn};").into_bytes());
    let limit = i64::from(q.limit.min(MAX_LIMIT + 1));
    let rows = c.query(
        "SELECT id, received_ms, topic, reason, detail, payload FROM dead_letters \
         WHERE (topic LIKE 'hj212-tcp://%' OR topic LIKE '%/hj212') AND reason = ANY($1) \
         AND received_ms >= $2 AND received_ms < $3 \
         AND ($4::bytea IS NULL OR position($4::bytea IN payload) > 0) \
         ORDER BY id DESC LIMIT $5",
        &[&reasons, &q.from_ms, &q.to_ms, &needle, &limit],
    )?;
    Ok(rows
        .iter()
        .map(|r| RawFrameRow {
            id: r.get(0),
            received_ms: r.get(1),
            topic: r.get(2),
            reason: r.get(3),
            detail: r.get(4),
            payload: r.get(5),
        })
        .collect())
}
