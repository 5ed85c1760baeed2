//! HJ 212 frames the store kept as dead letters: frames stored without some of their values
//! (`partial_frame`: unknown factors, implausible values), frames with no usable value
//! (`no_values`) and, on request, frames refused whole (`bad_frame`). Read-only and bounded: the
//! dead-letter table is capped, and a query returns at most [`MAX_LIMIT`] + 1 rows.

use super::StoreError;
use dustwatch_protocol::RejectReason;
use rusqlite::{params, Connection};

/// Most rows a client may ask for; a query returns at most one more (to tell there are more).
pub const MAX_LIMIT: u32 = 1_000;

/// Dead letters that hold an HJ 212 frame come from the TCP listener (`hj212-tcp://peer`) or
/// the MQTT topic `.../hj212`.
const FROM_HJ212: &str = "(topic LIKE 'hj212-tcp://%' OR topic LIKE '%/hj212')";

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrameQuery {
    /// Only frames whose header names this MN.
    pub mn: Option<String>,
    /// Received in [from_ms, to_ms).
    pub from_ms: i64,
    pub to_ms: i64,
    /// At most this many (capped at [`MAX_LIMIT`] + 1).
    pub limit: u32,
    /// Kept for one of these reasons.
    pub reasons: Vec<RejectReason>,
}

/// One kept frame as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrameRow {
    pub id: i64,
    pub received_ms: i64,
    /// Where it came from: `hj212-tcp://peer` or the MQTT topic.
    pub topic: String,
    pub reason: String,
    pub detail: String,
    pub payload: Vec<u8>,
}

pub fn query(c: &Connection, q: &RawFrameQuery) -> Result<Vec<RawFrameRow>, StoreError> {
    let reasons: Vec<&str> = q.reasons.iter().map(|r| r.label()).collect();
    // The reason list is at most RejectReason::ALL long: bind it as one JSON array.
    let reasons =
        serde_json::to_string(&reasons).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // `MN=x;` in the header; the CP block, where `;` also separates items, starts later with
    // `CP=`, and no factor code is `MN`.
    let needle = q.mn.as_ref().map(|mn| format!("MN={mn};").into_bytes());
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id, received_ms, topic, reason, detail, payload FROM dead_letters \
         WHERE {FROM_HJ212} AND reason IN (SELECT value FROM json_each(?1)) \
         AND received_ms >= ?2 AND received_ms < ?3 \
         AND (?4 IS NULL OR instr(payload, ?4) > 0) \
         ORDER BY id DESC LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            reasons,
            q.from_ms,
            q.to_ms,
            needle,
            q.limit.min(MAX_LIMIT + 1)
        ],
        |r| {
            Ok(RawFrameRow {
                id: r.get(0)?,
                received_ms: r.get(1)?,
                topic: r.get(2)?,
                reason: r.get(3)?,
                detail: r.get(4)?,
                payload: r.get(5)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
