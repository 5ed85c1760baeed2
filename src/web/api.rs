//! JSON API handlers.

use super::query;
use super::sites::{site_views, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::SeriesPoint;
use axum::extract::{Path, Query, State};
use axum::Json;
use dustwatch_protocol::time::DAY;
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
    /// Seconds; parsed (checked) by `query::series_step`.
    pub step: Option<String>,
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
    let latest_ts = state.reader.hot().latest(&site).map(|l| l.reading.ts.ms());
    let default_to = latest_ts
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
        .saturating_add(1);
    let range = query::time_range(q.from.as_deref(), q.to.as_deref(), default_to, DAY)?;
    let step = query::series_step(q.step.as_deref(), range)?;
    let (from, to) = (range.from, range.to);
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
