//! The daily report per street (HTML with a print stylesheet, CSV, JSON) and the rankings (JSON
//! API and an HTML page), in the page's language.

use super::html::escape;
use super::i18n::Lang;
use super::layout::{self, Nav, Ui};
use super::{blocking, AppState, WebError};
use crate::report::{self, DailyReport};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use std::fmt::Write;

fn parse_date(s: &str) -> Result<NaiveDate, WebError> {
    Ok(super::query::parse_date(s)?)
}

/// The local day of the fleet's event-time clock.
fn today(state: &AppState) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(super::charts::fleet_now(state))
        .unwrap_or_default()
        .with_timezone(&state.tz)
        .date_naive()
}

/// Excel on Chinese Windows reads CSV as UTF-8 only with a byte-order mark.
pub const BOM: &str = "\u{feff}";

/// `/reports/daily/{date}`, `{date}.csv`, `{date}.json`; `today` is the fleet's local day.
pub async fn daily(
    State(state): State<AppState>,
    lang: Lang,
    Path(date): Path<String>,
) -> Result<Response, WebError> {
    let (day, format) = match date.rsplit_once('.') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (date.clone(), "html".to_string()),
    };
    let day = if day == "today" {
        today(&state)
    } else {
        parse_date(&day)?
    };
    if !matches!(format.as_str(), "json" | "csv" | "html") {
        return Err(WebError::BadRequest(format!("unknown format `{format}`")));
    }
    let ui = Ui::new(lang, &state);
    let reader = state.reader.clone();
    let tz = state.tz;
    let acting = state.acting.store.clone();
    let r = blocking(move || {
        let mut r = report::daily(reader.as_ref(), day, tz)?;
        report::add_actions(&mut r, &acting, tz)?;
        Ok(r)
    })
    .await?;
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
            to_csv(&r, lang),
        )
            .into_response(),
        _ => layout::page(
            ui,
            &format!("{} {}", ui.t().report_title, r.date),
            Nav::Report,
            &(body(&r, lang) + &super::acting::report::section(&r, ui)),
            "",
        ),
    })
}

/// The report's CSV: a byte-order mark, the header in `lang`, the values as the JSON has them.
pub fn to_csv(r: &DailyReport, lang: Lang) -> String {
    let t = lang.t();
    let csv = report::to_csv(r);
    let rows = csv.split_once('\n').map_or("", |(_, rest)| rest);
    let header = [
        t.date,
        t.street,
        t.site,
        t.name,
        t.kind,
        t.exceedance_min,
        t.alerts_opened,
        t.closed,
        t.sprinkling_runs,
        t.data_pct,
        t.activity_min,
        t.night_min,
        t.highest_level,
        t.no_incident,
        t.incidents,
    ]
    .join(",");
    format!("{BOM}{header}\n{rows}")
}

/// The report's body: one table per street.
fn body(r: &DailyReport, lang: Lang) -> String {
    let t = lang.t();
    let mut b = format!(
        "<h1>{title} {date}</h1><p>{status} {local_day} {tz}. \
         <a class=noprint href=\"{date}.csv\">CSV</a> · <a class=noprint href=\"{date}.json\">JSON</a> · \
         <a class=noprint href=\"/reports/daily/{prev}\">← {prev}</a> · <a class=noprint href=\"/reports/daily/{next}\">{next} →</a></p>",
        title = t.report_title,
        date = r.date,
        status = if r.is_final { t.report_final } else { t.report_prelim },
        local_day = t.report_local_day,
        tz = escape(&r.time_zone),
        prev = r.date.pred_opt().unwrap_or(r.date),
        next = r.date.succ_opt().unwrap_or(r.date),
    );
    for st in &r.streets {
        let _ = write!(
            b,
            "<h2>{} <small>({} {} {} {})</small></h2><table><thead><tr>\
             <th>{}</th><th>{}</th><th class=n>{}</th><th class=n>{}</th>\
             <th class=n>{}</th><th class=n>{}</th><th class=n>{}</th><th>{}</th>\
             <th>{}</th></tr></thead><tbody>",
            escape(&st.street),
            st.sites_with_incidents,
            t.of,
            st.sites.len(),
            t.sites_with_incidents,
            t.site,
            t.name,
            t.exceedance_min,
            t.alerts_opened,
            t.closed,
            t.sprinkling_runs,
            t.data_pct,
            t.highest_level,
            t.incidents,
        );
        for s in &st.sites {
            let incidents = if s.no_incident {
                t.no_incident.to_string()
            } else {
                escape(
                    &s.alerts
                        .iter()
                        .map(|a| incident(lang, a))
                        .collect::<Vec<_>>()
                        .join("；"),
                )
            };
            let _ = write!(
                b,
                "<tr><td><a href=\"/sites/{id}\">{id}</a></td><td>{name}</td><td class=n>{}</td><td class=n>{}</td>\
                 <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td><td>{incidents}</td></tr>",
                s.exceedance_minutes,
                s.alerts_opened,
                s.alerts_closed,
                s.sprinkling_runs,
                s.completeness_pct,
                escape(&lang.level_word(&s.level_max)),
                id = escape(&s.site),
                name = escape(&s.name),
            );
        }
        b.push_str("</tbody></table>");
    }
    b
}

/// A report's incident (`rule (severity)`) in words.
fn incident(lang: Lang, a: &str) -> String {
    match a.strip_suffix(')').and_then(|x| x.rsplit_once(" (")) {
        Some((rule, severity)) => match lang {
            Lang::Zh => format!("{}（{}）", lang.rule(rule), lang.severity(severity)),
            Lang::En => format!("{} ({})", lang.rule(rule), lang.severity(severity)),
        },
        None => lang.rule(a),
    }
}

/// A standalone report page (the CLI's `report --format html`), in Chinese.
pub fn to_html(r: &DailyReport) -> String {
    let lang = Lang::default();
    format!(
        "<!doctype html><html lang={code}><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{title} {date}</title><style>{css}</style></head><body><main>{body}</main></body></html>",
        code = lang.code(),
        title = lang.t().report_title,
        date = r.date,
        css = layout::CSS,
        body = body(r, lang),
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

#[derive(Debug, Deserialize)]
pub struct RankPageQuery {
    /// `day`, `week` or `month` ending today (default `week`).
    pub period: Option<String>,
}

/// `GET /rankings`: sites and streets by exceedance minutes, over a day, a week or a month.
pub async fn rankings_page(
    State(state): State<AppState>,
    lang: Lang,
    Query(q): Query<RankPageQuery>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let t = ui.t();
    let period = q.period.unwrap_or_else(|| "week".into());
    let to = today(&state);
    let from = match period.as_str() {
        "day" => to,
        "week" => to - chrono::Days::new(6),
        "month" => to.with_day(1).unwrap_or(to),
        other => {
            return Err(WebError::BadRequest(format!(
                "period `{other}`: use day, week or month"
            )))
        }
    };
    let reader = state.reader.clone();
    let tz = state.tz;
    let r = blocking(move || Ok(report::rankings(reader.as_ref(), from, to, tz)?)).await?;
    let mut b = format!(
        "<h1>{} <span class=muted>{from} – {to}</span></h1><p>",
        t.rankings_title
    );
    for (p, word) in [
        ("day", t.rank_day),
        ("week", t.rank_week),
        ("month", t.rank_month),
    ] {
        if p == period {
            let _ = write!(b, "<b>{word}</b> ");
        } else {
            let _ = write!(b, "<a href=\"/rankings?period={p}\">{word}</a> ");
        }
    }
    b.push_str("</p>");
    let _ = write!(
        b,
        "<h2>{}</h2><table id=rank-streets><thead><tr><th class=n>{}</th><th>{}</th><th class=n>{}</th><th class=n>{}</th><th class=n>{}</th></tr></thead><tbody>",
        t.rank_streets, t.rank, t.street, t.sites_n, t.exceedance_min, t.alerts_opened
    );
    for s in &r.streets {
        let _ = write!(
            b,
            "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            s.rank,
            escape(&s.street),
            s.sites,
            s.exceedance_minutes,
            s.alerts
        );
    }
    let _ = write!(
        b,
        "</tbody></table><h2>{}</h2><table id=rank-sites><thead><tr><th class=n>{}</th><th>{}</th><th>{}</th><th class=n>{}</th><th class=n>{}</th></tr></thead><tbody>",
        t.rank_sites, t.rank, t.site, t.street, t.exceedance_min, t.alerts_opened
    );
    for s in &r.sites {
        let _ = write!(
            b,
            "<tr><td class=n>{}</td><td><a href=\"/sites/{id}\">{name}</a></td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            s.rank,
            escape(&s.street),
            s.exceedance_minutes,
            s.alerts,
            id = escape(&s.id),
            name = escape(&s.name),
        );
    }
    b.push_str("</tbody></table>");
    Ok(layout::page(ui, t.rankings_title, Nav::Rankings, &b, ""))
}
