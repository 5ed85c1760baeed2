//! Alerts and the city level over HTTP. Acknowledging needs an inspector, setting the level the
//! office (admin); the user is recorded.

use super::{blocking, AppState, WebError};
use crate::auth::{Admin, Inspector, Via};
use crate::rules::acks::AckError;
use crate::store::{Alert, AlertChange, AlertFilter};
use axum::extract::{Path, Query, State};
use axum::Json;
use dustwatch_protocol::{CityLevel, Level};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
    pub site: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Alert>>, WebError> {
    if let Some(s) = q.state.as_deref() {
        if !["active", "cleared", "closed", "open", "all"].contains(&s) {
            return Err(WebError::BadRequest(format!(
                "state `{s}`: use active, cleared, closed, open or all"
            )));
        }
    }
    let filter = AlertFilter {
        state: q.state,
        site: q.site,
        kind: q.kind,
        limit: Some(q.limit.unwrap_or(1000).min(10_000)),
        ..Default::default()
    };
    let reader = state.reader.clone();
    Ok(Json(blocking(move || Ok(reader.alerts(&filter)?)).await?))
}

#[derive(Debug, Serialize)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    pub history: Vec<AlertChange>,
}

pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<AlertDetail>, WebError> {
    let reader = state.reader.clone();
    blocking(move || {
        let alert = reader
            .alerts(&AlertFilter::default())?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| WebError::NotFound(format!("alert {id}")))?;
        Ok(Json(AlertDetail {
            history: reader.alert_history(id)?,
            alert,
        }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct AckBody {
    /// Who acknowledges, for the bootstrap token only; a user is recorded by name.
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub comment: String,
}

pub async fn ack(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(id): Path<i64>,
    Json(body): Json<AckBody>,
) -> Result<Json<Alert>, WebError> {
    // A named user is who they are; the shared bootstrap token names someone in `by`.
    let by = match user.via {
        Via::Bootstrap => body.by.trim(),
        _ => user.name.as_str(),
    };
    if by.is_empty() || by.len() > 100 || body.comment.len() > 2000 {
        return Err(WebError::BadRequest(
            "`by` is required with the write token (at most 100 characters); `comment` at most 2000"
                .into(),
        ));
    }
    match state
        .alert_actions
        .ack(id, by.to_string(), body.comment)
        .await
    {
        Ok(row) => Ok(Json(row)),
        Err(AckError::NoSuchAlert(id)) => Err(WebError::NotFound(format!("open alert {id}"))),
        Err(e @ AckError::OwnerUnreachable(_)) => Err(WebError::Unavailable(e.to_string())),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

pub async fn get_level(State(state): State<AppState>) -> Result<Json<CityLevel>, WebError> {
    let reader = state.reader.clone();
    let levels = blocking(move || Ok(reader.city_levels()?)).await?;
    Ok(Json(levels.last().copied().unwrap_or(CityLevel {
        level: Level::None,
        ts: 0,
    })))
}

#[derive(Debug, Deserialize)]
pub struct LevelBody {
    pub level: Level,
    /// Event time from which the level is in force (Unix ms); default now.
    pub ts: Option<i64>,
}

/// The level to publish, checked the way ingest will check it (contract limits, and at most
/// `max_future_ms` ahead of the wall clock), so a level ingest would refuse is a 400 here
/// instead of a 200 followed by a dead letter.
pub fn checked_level(
    body: &LevelBody,
    now_ms: i64,
    max_future_ms: i64,
) -> Result<(CityLevel, Vec<u8>), WebError> {
    let level = CityLevel {
        level: body.level,
        ts: body.ts.unwrap_or(now_ms),
    };
    let payload = serde_json::to_vec(&level).map_err(|e| WebError::Internal(e.to_string()))?;
    CityLevel::decode(&payload)
        .and_then(|_| dustwatch_protocol::check_not_future(level.ts, now_ms, max_future_ms))
        .map_err(|r| WebError::BadRequest(format!("`ts`: {}", r.detail)))?;
    Ok((level, payload))
}

/// Publish the level on `dust/v1/city/level` (retained): it comes back through ingest like the
/// city's own feed, so it is stored and judged the same way. The office (admin) sets it; the
/// role is checked before the body is read.
pub async fn put_level(
    State(state): State<AppState>,
    Admin(user): Admin,
    Json(body): Json<LevelBody>,
) -> Result<Json<CityLevel>, WebError> {
    tracing::info!(by = %user.name, level = body.level.name(), "city level set over HTTP");
    let now = chrono::Utc::now().timestamp_millis();
    let (level, payload) = checked_level(&body, now, state.max_future_ms)?;
    if !state
        .publisher
        .publish(state.publisher.root().city_level(), payload, true)
    {
        return Err(WebError::Internal("MQTT publish queue is full".into()));
    }
    Ok(Json(level))
}
