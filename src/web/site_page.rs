//! The site page (`/sites/{id}`): latest values, the PM chart over a chosen range, the AQI
//! calendar, CSV export links, device status and the site's alert history. Phone-first layout.

use super::i18n::Lang;
use super::layout::{self, Nav, Script, Ui};
use super::overview::{age, aqi_badge, values};
use super::sites::{find_site, fleet_now, status_name};
use super::sites::{site_views, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::AlertFilter;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use dustwatch_protocol::time::{DAY, HOUR};
use dustwatch_protocol::{EventTime, SiteInfo};
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct SiteQuery {
    /// `6h`, `24h`, `7d` or `30d`.
    pub range: Option<String>,
}

const RANGES: [(&str, i64); 4] = [
    ("6h", 6 * HOUR),
    ("24h", DAY),
    ("7d", 7 * DAY),
    ("30d", 30 * DAY),
];

/// The page's sections, top to bottom: a new section is one line in this list.
fn render(state: &AppState, ui: Ui, id: &str, range: &str) -> Result<Markup, WebError> {
    let site = find_site(state, id)?;
    let view = site_views(state)?.into_iter().find(|v| v.info.id == id);
    let sections = [
        heading(ui, &site),
        latest(ui, &site.id, view.as_ref()),
        gases(state, ui, &site.id, range, view.as_ref()),
        charts(state, ui, &site.id, range),
        devices(state, ui, id)?,
        super::commands::section(state, ui, id)?,
        alert_history(state, ui, id)?,
    ];
    Ok(html! { @for s in &sections { (s) } })
}

fn heading(ui: Ui, site: &SiteInfo) -> Markup {
    html! {
        h1 {
            (site.name) " "
            span.muted {
                (site.street) " · " (ui.lang.kind(site.kind.name())) " · "
                (ui.lang.kind(site.phase.name())) " · " (site.id)
            }
        }
    }
}

/// The latest values, AQI, status and data age (kept current by the live stream).
fn latest(ui: Ui, id: &str, view: Option<&SiteView>) -> Markup {
    let t = ui.t();
    let Some(v) = view else {
        return html! {};
    };
    let l = v.latest.as_ref().map(|l| &l.reading);
    let (aqi, colour, aqi_ink) = aqi_badge(ui.lang, v);
    let status = status_name(v);
    html! {
        div class={ "card " (status) } data-site=(id) {
            (values(l, "PM2.5 µg/m³"))
            span.aqi data-f="aqi" style={ "background:" (colour) ";color:" (aqi_ink) } { (aqi) }
            " "
            span.sub {
                (t.status) " " span class={ "st " (status) } data-f="status" { (ui.lang.status(&status)) }
                " · " (t.age) " " span data-f="age" { (age(v)) }
                " · " (t.newest_reading) " " (ui.time(l.map(|r| r.ts.ms())))
            }
        }
    }
}

/// The chosen range [from, to), ending at the site's newest reading (or the fleet's clock).
fn window(state: &AppState, id: &str, range: &str) -> (i64, i64) {
    let span = RANGES
        .iter()
        .find(|(n, _)| *n == range)
        .map_or(DAY, |r| r.1);
    let to = state
        .reader
        .hot()
        .latest(id)
        .map_or_else(|| fleet_now(state), |l| l.reading.ts.ms())
        + 1;
    (to - span, to)
}

/// An air station's gases with their sub-indices, charts over the same range.
fn gases(state: &AppState, ui: Ui, id: &str, range: &str, view: Option<&SiteView>) -> Markup {
    let (from, to) = window(state, id, range);
    // gases.rs renders with maud too: the text is already escaped.
    maud::PreEscaped(super::gases::section(ui.lang, view, from, to))
}

/// The PM chart over the chosen range, its PNG and CSV links, and the AQI calendar.
fn charts(state: &AppState, ui: Ui, id: &str, range: &str) -> Markup {
    let t = ui.t();
    let (from, to) = window(state, id, range);
    let lang = ui.lang.code();
    let window = format!("from={from}&to={to}&lang={lang}");
    let csv = [
        ("pm25", "PM2.5"),
        ("pm10", "PM10"),
        ("tsp", "TSP"),
        ("noise_dba", t.noise),
    ];
    html! {
        h2 {
            (t.pm_over) " "
            @for (n, _) in RANGES {
                @if n == range { b { (n) } } @else { a href={ "/sites/" (id) "?range=" (n) } { (n) } }
                " "
            }
        }
        div.panel {
            img.chart #site-chart alt={ "PM " (id) } src={ "/charts/sites/" (id) ".svg?" (window) }
                width="900" height="360";
        }
        p.muted {
            (t.chart_note) " PNG: " a href={ "/charts/sites/" (id) ".png?" (window) } { "chart.png" } ". "
            (t.csv_1min) ": "
            @for (metric, name) in csv {
                a href={ "/api/sites/" (id) "/series.csv?metric=" (metric) "&" (window) } { (name) } " "
            }
        }
        div.panel {
            img.chart.calendar alt={ "AQI " (id) } src={ "/charts/aqi/" (id) ".svg?lang=" (lang) } width="560" height="240";
        }
    }
}

/// The site's devices and what they last said.
fn devices(state: &AppState, ui: Ui, id: &str) -> Result<Markup, WebError> {
    let t = ui.t();
    let devices = state.reader.devices(Some(id))?;
    Ok(html! {
        h2 { (t.devices) }
        table {
            thead { tr {
                th { (t.device) } th { (t.state) } th { (t.firmware) }
                th.hide-s { (t.boot) } th.hide-s { (t.interval) } th { (t.last_seen) }
            } }
            tbody {
                @for d in &devices {
                    tr {
                        td { (d.device) }
                        td { (d.state.as_deref().unwrap_or("—")) }
                        td { (d.fw.as_deref().unwrap_or("—")) }
                        td.n.hide-s { (d.boot.map_or("—".into(), |x| x.to_string())) }
                        td.n.hide-s { (d.interval_s.map_or("—".into(), |x| format!("{x} s"))) }
                        td { (ui.time(d.last_seen_ms)) }
                    }
                }
            }
        }
    })
}

/// Every alert of the site, newest first, linked to the alerts page where they are acted on.
fn alert_history(state: &AppState, ui: Ui, id: &str) -> Result<Markup, WebError> {
    let t = ui.t();
    let alerts = state.reader.alerts(&AlertFilter {
        site: Some(id.to_string()),
        limit: Some(200),
        ..Default::default()
    })?;
    Ok(html! {
        h2 {
            (t.alert_history) " "
            a.muted href={ "/alerts?site=" (id) "&state=all" } { (t.act_on_them) }
        }
        table.stack {
            thead { tr {
                th { "#" } th { (t.rule) } th { (t.severity) } th { (t.state) } th { (t.opened) }
                th.hide-s { (t.cleared) } th.hide-s { (t.closed) } th { (t.acknowledged) }
            } }
            tbody {
                @if alerts.is_empty() {
                    tr { td.muted colspan="8" { (t.no_alerts) } }
                }
                @for a in &alerts {
                    tr {
                        td.n data-label="#" { (a.id) }
                        td data-label=(t.rule) { (ui.lang.rule(&a.rule)) }
                        td class={ "sev-" (a.severity) } data-label=(t.severity) { (ui.lang.severity(a.severity.name())) }
                        td data-label=(t.state) { (ui.lang.alert_state(a.state.name())) }
                        td data-label=(t.opened) { (ui.time(Some(a.opened_ts.ms()))) }
                        td.hide-s data-label=(t.cleared) { (ui.time(a.cleared_ts.map(EventTime::ms))) }
                        td.hide-s data-label=(t.closed) { (ui.time(a.closed_ts.map(EventTime::ms))) }
                        td data-label=(t.acknowledged) {
                            @if a.acknowledged {
                                (a.ack_by.as_deref().unwrap_or("")) " — " (a.ack_comment.as_deref().unwrap_or(""))
                            } @else {
                                (t.no)
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Path(id): Path<String>,
    Query(q): Query<SiteQuery>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let range = q.range.unwrap_or_else(|| "24h".into());
    let (title, body) = blocking(move || {
        let body = render(&state, ui, &id, &range)?;
        let title = find_site(&state, &id)?.name;
        Ok((title, body))
    })
    .await?;
    Ok(layout::page(
        ui,
        &title,
        Nav::None,
        Script::Page("site"),
        body,
    ))
}
