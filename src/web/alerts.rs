//! The alerts page (`/alerts`): filters by state and site, and per open alert an acknowledge form
//! with name and comment (needs the write token; `POST /api/alerts/{id}/ack`). The table refreshes
//! itself when the `/events` stream reports an alert change.

use super::i18n::Lang;
use super::layout::{self, Nav, Script, Ui};
use super::{blocking, query, AppState, WebError};
use crate::store::{Alert, AlertFilter};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use dustwatch_protocol::EventTime;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
pub struct AlertsQuery {
    pub state: Option<String>,
    pub site: Option<String>,
    /// `1`: only the table rows (for the live refresh).
    pub partial: Option<u8>,
}

const STATES: [&str; 5] = ["open", "active", "cleared", "closed", "all"];

/// Table rows; `names` maps site ids to their registered names.
fn rows(alerts: &[Alert], names: &HashMap<&str, &str>, ui: Ui) -> Markup {
    let t = ui.t();
    html! {
        @if alerts.is_empty() {
            tr { td.muted colspan="8" { (t.no_alerts_match) } }
        }
        @for a in alerts {
            tr data-alert=(a.id) {
                td.n data-label="#" { (a.id) }
                td data-label=(t.site) { a href={ "/sites/" (a.site) } { (names.get(a.site.as_str()).copied().unwrap_or(&a.site)) } }
                td data-label=(t.rule) { (ui.lang.rule(&a.rule)) div.muted { (super::evidence::words(ui, &a.evidence)) } }
                td class={ "sev-" (a.severity) } data-label=(t.severity) {
                    (ui.lang.severity(a.severity.name())) div.muted { (a.offences) " " (t.offences) }
                }
                td data-label=(t.state) { (ui.lang.alert_state(a.state.name())) }
                td data-label=(t.opened) { (ui.time(Some(a.opened_ts.ms()))) div.muted { (t.updated) " " (ui.time(Some(a.updated_ts.ms()))) } }
                td.hide-s data-label=(t.cleared) { (ui.time(a.cleared_ts.or(a.closed_ts).map(EventTime::ms))) }
                td data-label=(t.acknowledge) {
                    (acknowledgement(ui, a))
                    // Orders and re-inspections (acting/): rendered with maud there.
                    (PreEscaped(super::acting::act_link(ui.lang, a.id)))
                }
            }
        }
    }
}

/// Who acknowledged an alert, or the form to do it while it is not closed.
fn acknowledgement(ui: Ui, a: &Alert) -> Markup {
    let t = ui.t();
    html! {
        @if a.acknowledged {
            span.acked { "✔ " (a.ack_by.as_deref().unwrap_or("")) " — " (a.ack_comment.as_deref().unwrap_or("")) }
        } @else if a.is_open() {
            form.inline.ack data-id=(a.id) {
                input name="by" placeholder=(t.your_name) required maxlength="100";
                input name="comment" placeholder=(t.comment) maxlength="2000";
                button type="submit" { (t.acknowledge) }
                span.msg {}
            }
        } @else {
            span.muted { (t.closed_unacked) }
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let t = ui.t();
    let filter_state = q.state.clone().unwrap_or_else(|| "open".into());
    let states = query::alert_states(&filter_state)?;
    let site = q.site.clone().filter(|s| !s.is_empty());
    let (alerts, sites) = {
        let site = site.clone();
        blocking(move || {
            let alerts = state.reader.alerts(&AlertFilter {
                state: states,
                site,
                limit: Some(500),
                ..Default::default()
            })?;
            let sites = state.reader.sites()?;
            Ok((alerts, sites))
        })
        .await?
    };
    let names: HashMap<&str, &str> = sites
        .iter()
        .map(|s| (s.info.id.as_str(), s.info.name.as_str()))
        .collect();
    let body_rows = rows(&alerts, &names, ui);
    if q.partial == Some(1) {
        return Ok(Html(body_rows.into_string()).into_response());
    }
    let body = html! {
        h1 { (t.nav_alerts) " " span.muted { (alerts.len()) " " (t.alerts_shown) } }
        form.inline method="get" action="/alerts" {
            select name="state" {
                @for s in STATES {
                    option value=(s) selected[s == filter_state] { (ui.lang.alert_state(s)) }
                }
            }
            select name="site" {
                option value="" { (t.all_sites) }
                @for s in &sites {
                    option value=(s.info.id) selected[site.as_deref() == Some(s.info.id.as_str())] {
                        (s.info.name) " (" (s.info.id) ")"
                    }
                }
            }
            button type="submit" { (t.filter) }
        }
        p.inline {
            (t.token_for_ack) " "
            input name="token" type="password" autocomplete="off" placeholder=(t.write_token);
        }
        table.stack {
            thead { tr {
                th { "#" } th { (t.site) } th { (t.rule) } th { (t.severity) } th { (t.state) } th { (t.opened) }
                th.hide-s { (t.cleared) } th { (t.acknowledge) }
            } }
            tbody #alert-rows { (body_rows) }
        }
    };
    Ok(layout::page(
        ui,
        t.nav_alerts,
        Nav::Alerts,
        Script::Page("alerts"),
        body,
    ))
}
