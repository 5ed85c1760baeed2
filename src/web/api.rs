//! JSON API handlers.

use super::sites::{site_views, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::{SeriesPoint, StoreReader};
use axum::extract::{Path, Query, State};
use axum::Json;
use dustwatch_protocol::Metric;
use serde::{Deserialize, Serialize};

pub async fn sites(State(state): State<AppState>) -> Result<Json<Vec<SiteView>>, WebError> {
    let views = blocking(move || site_views(&state)).await?;
    Ok(Json(views))
}

#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    pub metric: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SeriesResponse {
    pub site: String,
    pub metric: Metric,
    pub unit: &'static str,
    pub from: i64,
    pub to: i64,
    pub step: i64,
    pub points: Vec<SeriesPoint>,
}

/// Most points one series request may return; a client asks for a coarser step instead.
const MAX_POINTS: i64 = 20_000;

/// A time in a query: Unix milliseconds or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, WebError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| WebError::BadRequest(format!("`{s}` is neither Unix ms nor RFC 3339")))
}

pub async fn series(
    State(state): State<AppState>,
    Path(site): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<SeriesResponse>, WebError> {
    let metric: Metric = q
        .metric
        .as_deref()
        .unwrap_or("pm10")
        .parse()
        .map_err(WebError::BadRequest)?;
    let step = q.step.unwrap_or(60);
    let latest_ts = state.reader.hot().latest(&site).map(|l| l.reading.ts);
    let to = match q.to.as_deref() {
        Some(t) => parse_time(t)?,
        None => latest_ts.unwrap_or_else(|| chrono::Utc::now().timestamp_millis()) + 1,
    };
    let from = match q.from.as_deref() {
        Some(t) => parse_time(t)?,
        None => to - 86_400_000,
    };
    if from >= to {
        return Err(WebError::BadRequest("`from` must be before `to`".into()));
    }
    if step < 1 || (to - from) / (step * 1000) > MAX_POINTS {
        return Err(WebError::BadRequest(format!(
            "step {step} s gives more than {MAX_POINTS} points over this range"
        )));
    }
    let reader = state.reader.clone();
    let site_id = site.clone();
    let (known, points) = blocking(move || {
        let known = reader.sites()?.iter().any(|s| s.info.id == site_id);
        let points = reader.series(&site_id, metric, from, to, step)?;
        Ok((known, points))
    })
    .await?;
    if !known {
        return Err(WebError::NotFound(format!("site `{site}`")));
    }
    Ok(Json(SeriesResponse {
        site,
        metric,
        unit: metric.unit(),
        from,
        to,
        step,
        points,
    }))
}
