//! Chart endpoints: `GET /charts/sites/{id}.svg|.png` (query `from`, `to`, `metric`, `w`, `h`) and
//! `GET /charts/aqi/{id}.svg|.png` (the site's AQI calendar, query `days`). Rendering runs off the
//! async workers.

use super::i18n::Lang;
use super::query;
use super::sites::{find_site, fleet_now};
use super::{blocking, AppState, WebError};
use crate::charts::data::{self, Frame, Overlays};
use crate::charts::site_series::AlertPeriod;
use crate::charts::{self, Format};
use crate::store::AlertFilter;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dustwatch_protocol::time::{DAY, SECOND};
use dustwatch_protocol::{EventTime, Metric};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only this metric (default: PM2.5, PM10 and TSP).
    pub metric: Option<String>,
    pub w: Option<u32>,
    pub h: Option<u32>,
    /// AQI calendar length.
    pub days: Option<i64>,
}

/// Split `name.svg` / `name.png`.
pub fn split_file(file: &str) -> Result<(&str, Format), WebError> {
    if let Some(id) = file.strip_suffix(".svg") {
        Ok((id, Format::Svg))
    } else if let Some(id) = file.strip_suffix(".png") {
        Ok((id, Format::Png))
    } else {
        Err(WebError::NotFound(format!(
            "`{file}`: charts are .svg or .png"
        )))
    }
}

/// The image response.
pub fn image(format: Format, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

/// Overlays for a site's chart: the time zone and the alert periods in [from, to).
pub fn overlays(
    state: &AppState,
    lang: Lang,
    site: &str,
    from: i64,
    to: i64,
) -> Result<Overlays, WebError> {
    let alerts = state.reader.alerts(&AlertFilter {
        site: Some(site.to_string()),
        from_ts: Some(EventTime(from)),
        to_ts: Some(EventTime(to)),
        limit: Some(500),
        ..Default::default()
    })?;
    Ok(Overlays {
        alerts: alerts
            .into_iter()
            .map(|a| AlertPeriod {
                from_ms: a.opened_ts.ms(),
                to_ms: a.cleared_ts.or(a.closed_ts).map_or(to, EventTime::ms),
                severity: a.severity,
            })
            .collect(),
        tz: state.tz,
        limits: state.limits.as_ref().clone(),
        english: lang == Lang::En,
    })
}

fn size(q: &ChartQuery, default: (u32, u32)) -> (u32, u32) {
    (
        q.w.unwrap_or(default.0).clamp(200, 3000),
        q.h.unwrap_or(default.1).clamp(120, 2000),
    )
}

pub async fn site_chart(
    State(state): State<AppState>,
    lang: Lang,
    Path(file): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, WebError> {
    let (id, format) = split_file(&file)?;
    let id = id.to_string();
    let metric: Option<Metric> = match q.metric.as_deref() {
        Some(m) => Some(m.parse().map_err(WebError::BadRequest)?),
        None => None,
    };
    let default_to = state
        .reader
        .hot()
        .latest(&id)
        .map_or_else(|| fleet_now(&state), |l| l.reading.ts.ms())
        .saturating_add(1);
    let range = query::time_range(q.from.as_deref(), q.to.as_deref(), default_to, DAY)?;
    let (from, to) = (range.from, range.to);
    let size = size(&q, (900, 360));
    let bytes = blocking(move || {
        let site = find_site(&state, &id)?;
        let ov = overlays(&state, lang, &id, from, to)?;
        let mut chart = data::site_series(
            state.reader.as_ref(),
            &site,
            Frame {
                from_ms: from,
                to_ms: to,
                size,
            },
            &ov,
        )?;
        if let Some(m) = metric {
            if !chart.lines.iter().any(|(lm, _)| *lm == m) {
                // A metric beside the PM chart's three (noise, weather, gases): its own line.
                let points = state
                    .reader
                    .series(&id, m, from, to, chart.step_ms / SECOND)?;
                chart.lines.push((m, points));
            }
            chart.lines.retain(|(lm, _)| *lm == m);
            chart.limits.retain(|l| l.metric == m);
        }
        charts::render(&chart, format).map_err(|e| WebError::Internal(e.to_string()))
    })
    .await?;
    Ok(image(format, bytes))
}

pub async fn aqi_chart(
    State(state): State<AppState>,
    lang: Lang,
    Path(file): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, WebError> {
    let (id, format) = split_file(&file)?;
    let id = id.to_string();
    let days = q.days.unwrap_or(35).clamp(1, 366);
    let size = size(&q, (560, 240));
    let bytes = blocking(move || {
        let site = find_site(&state, &id)?;
        let to = fleet_now(&state).saturating_add(1);
        let chart = data::aqi_calendar(
            state.reader.as_ref(),
            &format!("{} — {}", lang.t().aqi_calendar_title, site.name),
            std::slice::from_ref(&site),
            Frame {
                from_ms: to.saturating_sub(days * DAY),
                to_ms: to,
                size,
            },
            &Overlays {
                tz: state.tz,
                english: lang == Lang::En,
                ..Default::default()
            },
        )?;
        charts::render(&chart, format).map_err(|e| WebError::Internal(e.to_string()))
    })
    .await?;
    Ok(image(format, bytes))
}

/// `GET /api/sites/{id}/series.csv`: the same query as the JSON series, as CSV.
pub async fn series_csv(
    state: State<AppState>,
    lang: Lang,
    path: Path<String>,
    query: Query<super::api::SeriesQuery>,
) -> Result<Response, WebError> {
    let tz = state.tz;
    let axum::Json(s) = super::api::series(state, path, query).await?;
    // A byte-order mark for Excel; the header in the page's language; the local time with its
    // offset beside the Unix ms, so a spreadsheet needs no conversion.
    let mut out = String::from(super::reports::BOM);
    out.push_str(match lang {
        Lang::Zh => "ts_ms,本地时间,指标,单位,均值,最小值,最大值,读数个数\n",
        Lang::En => "ts_ms,local_time,metric,unit,mean,min,max,count\n",
    });
    for p in &s.points {
        let t = chrono::DateTime::from_timestamp_millis(p.ts)
            .map(|t| {
                t.with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{t},{},{},{},{},{},{}\n",
            p.ts,
            s.metric.name(),
            s.unit,
            p.mean,
            p.min,
            p.max,
            p.count
        ));
    }
    // The site id is validated ([A-Za-z0-9_-]) by the store; keep the file name safe anyway.
    let safe: String = s
        .site
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}-{}.csv\"", s.metric.name()),
            ),
        ],
        out,
    )
        .into_response())
}
