//! Commands to devices over HTTP (`POST`/`GET /api/sites/{id}/commands`, `GET
//! /api/commands/{id}`) and the site page's commands section.

use super::command_texts::{self, describe, texts};
use super::layout::Ui;
use super::{blocking, AppState, WebError};
use crate::auth::{Inspector, Via};
use crate::commands::CommandError;
use crate::store::commands::CommandRow;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use dustwatch_protocol::Command;
use maud::html;
use serde::Deserialize;

/// Body of `POST /api/sites/{id}/commands`: the device, who asks, and the command as on the
/// wire (`{"device":"d1","by":"王工","cmd":"sprinkle","duration_s":600}`).
#[derive(Debug, Deserialize)]
pub struct SendBody {
    pub device: String,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(flatten)]
    pub command: Command,
}

impl From<CommandError> for WebError {
    fn from(e: CommandError) -> WebError {
        match e {
            CommandError::Invalid(m) => WebError::BadRequest(m),
            CommandError::Store(s) => WebError::Store(s),
            other => WebError::Internal(other.to_string()),
        }
    }
}

/// Inspectors and admins send commands (the extractor refuses anyone else before the body is
/// read).
pub async fn send(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(site): Path<String>,
    body: Result<Json<SendBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CommandRow>), WebError> {
    let Json(body) = body.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let row = blocking(move || {
        let devices = state.reader.devices(Some(&site))?;
        if !devices.iter().any(|d| d.device == body.device) {
            return Err(WebError::NotFound(format!(
                "device `{}` at site `{site}` (it must have reported at least once)",
                body.device
            )));
        }
        // A named user is who they are; the shared bootstrap token names someone in `by`.
        let by = match user.via {
            Via::Bootstrap => body.by.as_deref().unwrap_or("api"),
            _ => user.name.as_str(),
        };
        if by.chars().count() > 100 {
            return Err(WebError::BadRequest(
                "`by` is longer than 100 characters".into(),
            ));
        }
        let office_ts = crate::commands::office_now(state.reader.hot());
        Ok(state
            .commands
            .send(&site, &body.device, body.command, by, office_ts)?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(row)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Path(site): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<CommandRow>>, WebError> {
    let limit = q.limit.unwrap_or(100).min(1000);
    Ok(Json(
        blocking(move || Ok(state.commands.list(&site, limit)?)).await?,
    ))
}

pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CommandRow>, WebError> {
    blocking(move || {
        state
            .commands
            .get(&id)?
            .map(Json)
            .ok_or_else(|| WebError::NotFound(format!("command `{id}`")))
    })
    .await
}

/// The site page's section: the site's last commands and what became of them. Blocking.
pub fn section(state: &AppState, ui: Ui, site: &str) -> Result<maud::Markup, WebError> {
    let t = texts(ui.lang);
    let rows = state.commands.list(site, 20)?;
    let devices = state.reader.devices(Some(site))?;
    Ok(html! {
        h2 { (t.heading) }
        @if !devices.is_empty() {
            // Sent by the shared page script (`form.device-command`) with the write token.
            form.inline.device-command data-site=(site) {
                select name="device" { @for d in &devices { option value=(d.device) { (d.device) } } }
                select name="cmd" {
                    option value="sprinkle" { (t.sprinkle_min) }
                    option value="set_interval" { (t.interval_s) }
                    option value="reboot" { (t.reboot) }
                }
                input name="amount" type="number" min="1" max="3600" value="10" aria-label=(t.amount);
                input name="token" type="password" autocomplete="off" placeholder=(t.write_token);
                button type="submit" { (t.send) }
                " " span.msg {}
            }
        }
        table #commands {
            thead { tr {
                th { (t.sent) } th { (t.device) } th { (t.command) }
                th.hide-s { (t.by) } th { (t.state) } th { (t.answer) }
            } }
            tbody {
                @if rows.is_empty() {
                    tr { td.muted colspan="6" { (t.none) } }
                }
                @for c in &rows {
                    tr data-command=(c.id) data-state=(c.state.name()) {
                        td { (ui.time(Some(c.sent_ms))) }
                        td { (c.device) }
                        td { (describe(ui.lang, &c.command)) }
                        td.hide-s { (c.by) }
                        td { (command_texts::state(ui.lang, c.state.name(), c.ok)) }
                        td { (c.detail.as_deref().unwrap_or("—")) " " (ui.time(c.answered_ms).replace('—', "")) }
                    }
                }
            }
        }
        p.muted { (t.how_to) }
    })
}
