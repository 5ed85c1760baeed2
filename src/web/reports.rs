//! The daily report per street (HTML with a print stylesheet, CSV, JSON) and the rankings (JSON
//! API and an HTML page), in the page's language.

use super::i18n::Lang;
use super::layout::{self, Nav, Script, Ui};
use super::{blocking, AppState, WebError};
use crate::report::{self, DailyReport};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

fn parse_date(s: &str) -> Result<NaiveDate, WebError> {
    Ok(super::query::parse_date(s)?)
}

/// The local day of the fleet's event-time clock.
fn today(state: &AppState) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(super::sites::fleet_now(state))
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
    let commands = state.commands.clone();
    let r = blocking(move || {
        let mut r = report::daily(reader.as_ref(), day, tz)?;
        report::add_actions(&mut r, &acting, tz)?;
        report::add_commands(&mut r, tz, |from, to| commands.counts_between(from, to))?;
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
            Script::Static,
            html! {
                (body(&r, lang))
                // Notices, orders, re-inspections and patrols (acting/report.rs, maud there).
                (PreEscaped(super::acting::report::section(&r, ui)))
            },
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
fn body(r: &DailyReport, lang: Lang) -> Markup {
    let t = lang.t();
    let prev = r.date.pred_opt().unwrap_or(r.date);
    let next = r.date.succ_opt().unwrap_or(r.date);
    html! {
        h1 { (t.report_title) " " (r.date) }
        p {
            (if r.is_final { t.report_final } else { t.report_prelim }) " " (t.report_local_day) " " (r.time_zone) ". "
            a.noprint href={ (r.date) ".csv" } { "CSV" } " · "
            a.noprint href={ (r.date) ".json" } { "JSON" } " · "
            a.noprint href={ "/reports/daily/" (prev) } { "← " (prev) } " · "
            a.noprint href={ "/reports/daily/" (next) } { (next) " →" }
        }
        @for st in &r.streets {
            h2 {
                (st.street) " "
                small { "(" (st.sites_with_incidents) " " (t.of) " " (st.sites.len()) " " (t.sites_with_incidents) ")" }
            }
            table.stack {
                thead { tr {
                    th { (t.site) } th { (t.name) } th.n { (t.exceedance_min) } th.n { (t.alerts_opened) }
                    th.n { (t.closed) } th.n { (t.sprinkling_runs) } th.n { (t.data_pct) } th { (t.highest_level) }
                    th { (t.incidents) }
                } }
                tbody {
                    @for s in &st.sites {
                        tr {
                            td data-label=(t.site) { a href={ "/sites/" (s.site) } { (s.site) } }
                            td data-label=(t.name) { (s.name) }
                            td.n data-label=(t.exceedance_min) { (s.exceedance_minutes) }
                            td.n data-label=(t.alerts_opened) { (s.alerts_opened) }
                            td.n data-label=(t.closed) { (s.alerts_closed) }
                            td.n data-label=(t.sprinkling_runs) { (s.sprinkling_runs) }
                            td.n data-label=(t.data_pct) { (s.completeness_pct) }
                            td data-label=(t.highest_level) { (lang.level_word(&s.level_max)) }
                            td data-label=(t.incidents) {
                                @if s.no_incident {
                                    (t.no_incident)
                                } @else {
                                    (s.alerts.iter().map(|a| incident(lang, a)).collect::<Vec<_>>().join("；"))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
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
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.t().report_title) " " (r.date) }
                // The stylesheet is ours, inlined so the file stands alone.
                style { (PreEscaped(layout::CSS)) }
            }
            body { main { (body(r, lang)) } }
        }
    }
    .into_string()
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
    let periods = [
        ("day", t.rank_day),
        ("week", t.rank_week),
        ("month", t.rank_month),
    ];
    let body = html! {
        h1 { (t.rankings_title) " " span.muted { (from) " – " (to) } }
        p {
            @for (p, word) in periods {
                @if p == period { b { (word) } } @else { a href={ "/rankings?period=" (p) } { (word) } }
                " "
            }
        }
        h2 { (t.rank_streets) }
        table #rank-streets {
            thead { tr {
                th.n { (t.rank) } th { (t.street) } th.n { (t.sites_n) } (super::rankings_text::score_header(ui.lang)) th.n { (t.alerts_opened) }
            } }
            tbody {
                @for s in &r.streets {
                    tr {
                        td.n { (s.rank) } td { (s.street) } td.n { (s.sites) }
                        td.n { (s.minutes_per_day) } td.n { (s.alerts) }
                    }
                }
            }
        }
        h2 { (t.rank_sites) }
        table #rank-sites {
            thead { tr {
                th.n { (t.rank) } th { (t.site) } th { (t.street) } (super::rankings_text::score_header(ui.lang)) th.n { (t.alerts_opened) }
            } }
            tbody {
                @for s in &r.sites {
                    tr {
                        td.n { (s.rank) } td { a href={ "/sites/" (s.id) } { (s.name) } } td { (s.street) }
                        td.n { (s.minutes_per_day) } td.n { (s.alerts) }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        ui,
        t.rankings_title,
        Nav::Rankings,
        Script::Static,
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{SiteLine, StreetReport};

    #[test]
    fn the_standalone_report_shows_registry_markup_as_text() {
        let evil = "<script>alert(1)</script>";
        let r = DailyReport {
            date: NaiveDate::from_ymd_opt(2017, 1, 3).expect("a valid date"),
            time_zone: "Asia/Shanghai".into(),
            is_final: true,
            actions: None,
            commands: None,
            streets: vec![StreetReport {
                street: format!("迎宾路街道{evil}"),
                sites_with_incidents: 1,
                sites: vec![SiteLine {
                    site: "s1".into(),
                    name: format!("\"><img src=x onerror=alert(2)>{evil}"),
                    kind: "construction".into(),
                    exceedance_minutes: 12,
                    alerts_opened: 1,
                    alerts_closed: 0,
                    sprinkling_runs: 0,
                    completeness_pct: 100.0,
                    activity_minutes: 0,
                    night_activity_minutes: 0,
                    level_max: "red".into(),
                    alerts: vec![format!("{evil} (warning)")],
                    no_incident: false,
                    not_judged_minutes: 0,
                    not_judged: vec![],
                }],
            }],
        };
        let page = to_html(&r);
        assert!(
            page.starts_with("<!DOCTYPE html><html lang=\"zh-CN\">"),
            "{page}"
        );
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("迎宾路街道&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("&quot;&gt;&lt;img src=x"), "{page}");
        assert!(page.contains("红色预警"), "the level in words: {page}");
    }
}
