//! The daily report (HTML, CSV, JSON) and rankings.

use super::html::escape;
use super::{blocking, AppState, WebError};
use crate::report::{self, DailyReport};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use std::fmt::Write;

fn parse_date(s: &str) -> Result<NaiveDate, WebError> {
    Ok(super::query::parse_date(s)?)
}

/// `/reports/daily/{date}`, `{date}.csv`, `{date}.json`.
pub async fn daily(
    State(state): State<AppState>,
    Path(date): Path<String>,
) -> Result<Response, WebError> {
    let (day, format) = match date.rsplit_once('.') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (date.clone(), "html".to_string()),
    };
    let day = parse_date(&day)?;
    let reader = state.reader.clone();
    let tz = state.tz;
    let r = blocking(move || Ok(report::daily(reader.as_ref(), day, tz)?)).await?;
    Ok(match format.as_str() {
        "json" => Json(r).into_response(),
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"dustwatch-{day}.csv\""),
                ),
            ],
            report::to_csv(&r),
        )
            .into_response(),
        "html" => Html(to_html(&r)).into_response(),
        other => return Err(WebError::BadRequest(format!("unknown format `{other}`"))),
    })
}

pub fn to_html(r: &DailyReport) -> String {
    let mut body = String::new();
    for st in &r.streets {
        let _ = write!(
            body,
            "<h2>{} <small>({} of {} sites with incidents)</small></h2><table><thead><tr>\
             <th>Site</th><th>Name</th><th>Exceedance min</th><th>Alerts opened</th>\
             <th>Closed</th><th>Sprinkling runs</th><th>Data %</th><th>Highest level</th>\
             <th>Incidents</th></tr></thead><tbody>",
            escape(&st.street),
            st.sites_with_incidents,
            st.sites.len()
        );
        for s in &st.sites {
            let incidents = if s.no_incident {
                "No incident".to_string()
            } else {
                escape(&s.alerts.join("; "))
            };
            let _ = write!(
                body,
                "<tr><td><a href=\"/sites/{id}\">{id}</a></td><td>{name}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{incidents}</td></tr>",
                s.exceedance_minutes,
                s.alerts_opened,
                s.alerts_closed,
                s.sprinkling_runs,
                s.completeness_pct,
                escape(&s.level_max),
                id = escape(&s.site),
                name = escape(&s.name),
            );
        }
        body.push_str("</tbody></table>");
    }
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>Daily report {date}</title><style>body{{font-family:sans-serif;margin:1em}}\
         table{{border-collapse:collapse;width:100%}}td,th{{padding:.3em;border-bottom:1px solid #ddd}}</style>\
         </head><body><h1>Daily report {date}</h1><p>{status} Local day in {tz}. \
         <a href=\"{date}.csv\">CSV</a> · <a href=\"{date}.json\">JSON</a></p>{body}</body></html>",
        date = r.date,
        tz = escape(&r.time_zone),
        status = if r.final_ { "Final." } else { "Preliminary: the day is still open in event time." },
    )
}

#[derive(Debug, Deserialize)]
pub struct RankQuery {
    pub from: String,
    pub to: String,
}

pub async fn rankings(
    State(state): State<AppState>,
    Query(q): Query<RankQuery>,
) -> Result<Json<report::Rankings>, WebError> {
    let (from, to) = super::query::date_range(&q.from, &q.to)?;
    let reader = state.reader.clone();
    let tz = state.tz;
    Ok(Json(
        blocking(move || Ok(report::rankings(reader.as_ref(), from, to, tz)?)).await?,
    ))
}
