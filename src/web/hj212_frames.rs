//! `GET /api/hj212/frames`: the HJ 212 frames kept beside (or instead of) what was stored — a
//! frame stored without some values (`partial_frame`: unknown factors, implausible values), a
//! frame with no usable value (`no_values`) and, when asked, a frame refused whole
//! (`bad_frame`). Read-only, newest first, at most 1,000 a request. Query: `mn`, `from`, `to`
//! (time received, Unix ms or RFC 3339), `limit` (default 100), `reason` (one of the three;
//! default the first two). Device passwords are masked in the frame text.

use super::query::{parse_time, MAX_TIME_MS, MIN_TIME_MS};
use super::{blocking, AppState, WebError};
use crate::ingest::hj212::{dropped_fields, DroppedField};
use crate::store::raw_frames::{RawFrameQuery, RawFrameRow, MAX_LIMIT};

use axum::extract::{Query, State};
use axum::Json;
use dustwatch_protocol::{hj212, RejectReason};
use serde::{Deserialize, Serialize};

/// Rows a request gets when it names no `limit`.
const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct FramesQuery {
    pub mn: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
    pub reason: Option<String>,
}

/// One kept frame.
#[derive(Debug, Serialize)]
pub struct KeptFrame {
    pub id: i64,
    /// When the aggregator received it, Unix ms.
    pub received_ms: i64,
    /// `hj212-tcp://peer` or the MQTT topic it came on.
    pub source: String,
    /// Header fields, when the frame still decodes (`bad_frame` ones may not).
    pub mn: Option<String>,
    pub cn: Option<u16>,
    pub st: Option<u16>,
    /// `DataTime` as the frame writes it (the device's local time).
    pub data_time: Option<String>,
    pub reason: String,
    pub detail: String,
    /// The values left out of the stored reading, each with why.
    pub dropped: Vec<DroppedField>,
    /// The frame as received (non-ASCII bytes replaced), its `PW` masked.
    pub frame: String,
}

#[derive(Debug, Serialize)]
pub struct FramesResponse {
    pub limit: u32,
    /// More frames match than `limit`: ask again with `to` at the oldest `received_ms`.
    pub more: bool,
    pub frames: Vec<KeptFrame>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<FramesQuery>,
) -> Result<Json<FramesResponse>, WebError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let reasons = match q.reason.as_deref() {
        None => vec![RejectReason::PartialFrame, RejectReason::NoValues],
        Some(r) => vec![[
            RejectReason::PartialFrame,
            RejectReason::NoValues,
            RejectReason::BadFrame,
        ]
        .into_iter()
        .find(|x| x.label() == r)
        .ok_or_else(|| {
            WebError::BadRequest("reason: use partial_frame, no_values or bad_frame".into())
        })?],
    };
    let from = q.from.as_deref().map(parse_time).transpose()?;
    let to = q.to.as_deref().map(parse_time).transpose()?;
    let (from_ms, to_ms) = (from.unwrap_or(MIN_TIME_MS), to.unwrap_or(MAX_TIME_MS));
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("`from` must be before `to`".into()));
    }
    if q.mn
        .as_ref()
        .is_some_and(|mn| mn.is_empty() || mn.len() > 64)
    {
        return Err(WebError::BadRequest("mn: 1 to 64 characters".into()));
    }
    let query = RawFrameQuery {
        mn: q.mn.clone(),
        from_ms,
        to_ms,
        // One more than asked tells whether there is more.
        limit: limit + 1,
        reasons,
    };
    let reader = state.reader.clone();
    let rows = blocking(move || Ok(reader.raw_frames(&query)?)).await?;
    let mut frames: Vec<KeptFrame> = rows
        .into_iter()
        .map(kept)
        // The store matched `MN=x;` anywhere in the header; keep only the header's own MN.
        .filter(|f| q.mn.is_none() || f.mn.is_none() || f.mn == q.mn)
        .collect();
    let more = frames.len() > limit as usize;
    frames.truncate(limit as usize);
    Ok(Json(FramesResponse {
        limit,
        more,
        frames,
    }))
}

fn kept(row: RawFrameRow) -> KeptFrame {
    let frame = hj212::decode(&row.payload).ok().or_else(|| {
        // Over MQTT the final CRLF is optional.
        hj212::decode(&[&row.payload[..], b"\r\n"].concat()).ok()
    });
    let text = String::from_utf8_lossy(&row.payload)
        .trim_matches(|c: char| c == '\0' || c == '\r' || c == '\n')
        .to_string();
    KeptFrame {
        id: row.id,
        received_ms: row.received_ms,
        source: row.topic,
        mn: frame.as_ref().map(|f| f.mn.clone()),
        cn: frame.as_ref().map(|f| f.cn.code()),
        st: frame.as_ref().map(|f| f.st),
        data_time: frame
            .as_ref()
            .and_then(|f| f.cp.data_time)
            .map(|t| t.to_string()),
        dropped: dropped_fields(&row.detail),
        reason: row.reason,
        detail: row.detail,
        frame: mask_password(&text),
    }
}

/// The frame text with the value of its header's `PW=` replaced by `***` (the API is readable
/// without the write token; a device's password is not for every reader).
fn mask_password(text: &str) -> String {
    let header_end = text.find("CP=").unwrap_or(text.len());
    let header = &text[..header_end];
    let at = header
        .match_indices("PW=")
        .find(|(i, _)| *i == 0 || matches!(header.as_bytes()[i - 1], b';' | b'0'..=b'9'));
    match at {
        Some((i, _)) => {
            let value_start = i + 3;
            let value_end = header[value_start..]
                .find(';')
                .map_or(header_end, |j| value_start + j);
            format!("{}***{}", &text[..value_start], &text[value_end..])
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn passwords_are_masked_in_the_header_only() {
        assert_eq!(
            mask_password("##0050QN=1;ST=39;CN=2011;PW=123456;MN=M1;CP=&&PW=9&&ABCD"),
            "##0050QN=1;ST=39;CN=2011;PW=***;MN=M1;CP=&&PW=9&&ABCD"
        );
        assert_eq!(mask_password("##0010PW=1;MN=2"), "##0010PW=***;MN=2");
        assert_eq!(mask_password("no header"), "no header");
        assert_eq!(mask_password("QN=1;XPW=2;MN=3"), "QN=1;XPW=2;MN=3");
    }
}
