//! The alert's action page (`/alerts/{id}/act`) and its forms: the orders on the alert with the
//! devices' answers to their stop-work commands, the site's response, re-inspections with
//! photos. The forms go through the same checks as the JSON API (`orders.rs`).

use super::i18n::words;
use super::order_texts;
use super::orders::{
    alert, check_note, device_commands, do_issue, do_reinspect, photo_kind, IssueBody,
    ReinspectBody, PHOTO_MAX_BYTES,
};
use super::to_login;
use crate::auth::{pages::whoami, Role, User};
use crate::store::acting::{OrderKind, OrderState, ReinspectionResult};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Nav, Script, Ui};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Multipart, Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::TimeZone;
use maud::html;
use serde::Deserialize;

/// `YYYY-MM-DDTHH:MM` (a datetime-local input) in the office's zone.
fn local_input(s: &str, tz: chrono_tz::Tz) -> Option<i64> {
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
}

pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    user: Option<User>,
    uri: Uri,
    Path(alert_id): Path<i64>,
) -> Result<Response, WebError> {
    let Some(user) = user else {
        return Ok(to_login(uri.path()));
    };
    let a = alert(&state, alert_id).await?;
    let store = state.acting.store.clone();
    let commands = state.commands.clone();
    let (orders, sent) = blocking(move || {
        let orders = store.orders_of_alert(alert_id)?;
        let sent = orders
            .iter()
            .map(|o| device_commands(&commands, o.id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((orders, sent))
    })
    .await?;
    let t = order_texts::texts(lang);
    let ui = Ui::new(lang, &state);
    let w = words(lang);
    let can = user.role >= Role::Inspector;
    let open_order = orders.iter().find(|o| o.state == OrderState::Open);
    // The newest escalation a failed re-inspection recorded.
    let escalated = orders
        .iter()
        .flat_map(|o| o.reinspections.iter())
        .filter_map(|r| r.escalated_to.as_deref())
        .next_back();
    let kind_word = |k: OrderKind| match k {
        OrderKind::StopWork => w.stop_work,
        OrderKind::Rectify => w.rectify,
    };
    let body = html! {
        (whoami(lang, &user))
        h1 { (w.act_title) " — " (w.alert) " " (a.id) }
        p {
            a href={"/sites/" (a.site)} { (a.site) } " · " (lang.rule(&a.rule)) " · "
            (lang.severity(a.severity.name())) " · " (lang.alert_state(a.state.name()))
            @if let Some(s) = escalated { " · " (w.escalated_to) " " strong.escalated { (lang.severity(s)) } }
        }
        h2 { (w.orders) }
        @if orders.is_empty() { p.muted { (w.no_orders) } }
        @for (o, cmds) in orders.iter().zip(&sent) {
            section.order id={"order-" (o.id)} data-state=(if o.state == OrderState::Open { "open" } else { "passed" }) {
                h3 { (kind_word(o.kind)) " #" (o.id) " — "
                    @if o.state == OrderState::Open { (w.open) } @else { (w.passed) } }
                p { (w.issued) ": " (ui.time(Some(o.issued_ts))) " · " (w.by) ": " (o.issued_by)
                    @if let Some(d) = o.deadline_ts { " · " (w.deadline) ": " (ui.time(Some(d))) } }
                @if !o.note.is_empty() { p { (o.note) } }
                @if o.kind == OrderKind::StopWork {
                    h4 { (t.devices) }
                    @if cmds.is_empty() { p.muted { (t.no_device) } }
                    ul.device-answers {
                        @for c in cmds {
                            li.device-answer data-device=(c.device) data-cmd=(c.command["cmd"].as_str().unwrap_or(""))
                                data-state=(c.state.name()) data-ok=(c.ok.map_or("", |ok| if ok { "true" } else { "false" })) {
                                (c.device) " · " (t.kind(c)) " · " (ui.time(Some(c.office_ts.unwrap_or(c.sent_ms)))) " · "
                                strong { (t.outcome(c)) }
                                @if let Some(d) = &c.detail { " — " (d) }
                            }
                        }
                    }
                }
                @if let Some(r) = &o.response { p { (w.response) ": " (r) } }
                @if !o.reinspections.is_empty() {
                    table.reinspections {
                        thead { tr { th { (w.reinspections) } th { (w.by) } th { (w.note) } th { (w.photo) } } }
                        tbody { @for r in &o.reinspections {
                            tr.reinspection data-result=(r.result.name()) {
                                td { (ui.time(Some(r.ts))) " "
                                    @if r.result == ReinspectionResult::Passed { (w.passed) } @else { (w.failed) }
                                    @if let Some(s) = &r.escalated_to { " · " (w.escalated_to) " " (lang.severity(s)) } }
                                td { (r.by) }
                                td { (r.note) }
                                td { @if let Some(p) = &r.photo { a href={"/photos/" (p)} { (w.photo) } } }
                            }
                        } }
                    }
                }
            }
        }
        @if can && a.is_open() {
            @if let Some(o) = open_order {
                h2 { (w.response) }
                form.response method="post" action={"/alerts/" (a.id) "/act/response"} {
                    input type="hidden" name="csrf" value=(user.csrf());
                    input type="hidden" name="order_id" value=(o.id);
                    p { textarea name="response" required maxlength="2000" { (o.response.as_deref().unwrap_or("")) } }
                    p { button type="submit" { (w.save) } }
                }
                h2 { (w.reinspect) }
                form.reinspect method="post" action={"/alerts/" (a.id) "/act/reinspect"} enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(user.csrf());
                    input type="hidden" name="order_id" value=(o.id);
                    p {
                        label { input type="radio" name="result" value="passed" required; " " (w.passed) } " "
                        label { input type="radio" name="result" value="failed"; " " (w.failed) }
                    }
                    p { label { (w.note) br; textarea name="note" maxlength="2000" {} } }
                    p { label { (w.photo) " (JPEG/PNG ≤ 5 MiB)" br; input type="file" name="photo" accept="image/jpeg,image/png"; } }
                    p { button type="submit" { (w.save) } }
                }
            } @else {
                h2 { (w.issue_order) }
                form.order method="post" action={"/alerts/" (a.id) "/act/order"} {
                    input type="hidden" name="csrf" value=(user.csrf());
                    p {
                        label { input type="radio" name="kind" value="stop_work" required; " " (w.stop_work) } " "
                        label { input type="radio" name="kind" value="rectify"; " " (w.rectify) }
                    }
                    p { label { (w.deadline) br; input type="datetime-local" name="deadline"; } }
                    p { label { (w.note) br; textarea name="note" maxlength="2000" {} } }
                    p { button type="submit" { (w.issue_order) } }
                }
            }
        }
    };
    Ok(layout::page(
        ui,
        w.act_title,
        Nav::Alerts,
        Script::Static,
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    pub csrf: String,
    pub kind: OrderKind,
    #[serde(default)]
    pub deadline: String,
    #[serde(default)]
    pub note: String,
}

pub async fn issue_form(
    State(state): State<AppState>,
    user: User,
    Path(alert_id): Path<i64>,
    Form(f): Form<IssueForm>,
) -> Result<Response, WebError> {
    let user = user.form_csrf(&f.csrf);
    user.require(Role::Inspector)?;
    let deadline_ts = if f.deadline.trim().is_empty() {
        None
    } else {
        Some(local_input(&f.deadline, state.tz).ok_or_else(|| {
            WebError::BadRequest(format!("deadline `{}`: use YYYY-MM-DDTHH:MM", f.deadline))
        })?)
    };
    let body = IssueBody {
        kind: f.kind,
        deadline_ts,
        note: f.note,
        ts: None,
    };
    do_issue(&state, &user, alert_id, body).await?;
    Ok(Redirect::to(&format!("/alerts/{alert_id}/act")).into_response())
}

pub async fn reinspect_form(
    State(state): State<AppState>,
    user: User,
    Path(alert_id): Path<i64>,
    form: Option<Multipart>,
) -> Result<Response, WebError> {
    // The role is known before the body: refuse a viewer without reading a photo.
    if user.role < Role::Inspector {
        user.require(Role::Inspector)?;
    }
    let Some(mut form) = form else {
        return Err(WebError::BadRequest(
            "a re-inspection form is multipart/form-data".into(),
        ));
    };
    let bad = |e: axum::extract::multipart::MultipartError| WebError::BadRequest(e.body_text());
    let (mut csrf, mut order_id, mut result, mut note, mut photo) =
        (String::new(), None, None, String::new(), None);
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.map_err(bad)?,
            "order_id" => order_id = field.text().await.map_err(bad)?.trim().parse::<i64>().ok(),
            "result" => {
                result = match field.text().await.map_err(bad)?.as_str() {
                    "passed" => Some(ReinspectionResult::Passed),
                    "failed" => Some(ReinspectionResult::Failed),
                    _ => None,
                }
            }
            "note" => note = field.text().await.map_err(bad)?,
            "photo" => {
                let declared = field.content_type().map(str::to_string);
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    if bytes.len() + chunk.len() > PHOTO_MAX_BYTES {
                        return Err(WebError::BadRequest(format!(
                            "a photo is at most {} MiB",
                            PHOTO_MAX_BYTES / (1024 * 1024)
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // An empty file input sends an empty part: no photo.
                if !bytes.is_empty() {
                    let ext = photo_kind(declared.as_deref(), &bytes)?;
                    photo = Some((bytes, ext));
                }
            }
            _ => {}
        }
    }
    let user = user.form_csrf(&csrf);
    user.require(Role::Inspector)?;
    let (Some(order_id), Some(result)) = (order_id, result) else {
        return Err(WebError::BadRequest(
            "`order_id` and `result` (passed or failed) are required".into(),
        ));
    };
    let store = state.acting.store.clone();
    let order = blocking(move || Ok(store.order(order_id)?)).await?;
    if order.alert_id != alert_id {
        return Err(WebError::BadRequest(format!(
            "order {order_id} is not on alert {alert_id}"
        )));
    }
    let body = ReinspectBody {
        result,
        note,
        ts: None,
    };
    do_reinspect(&state, &user, order_id, body, photo).await?;
    Ok(Redirect::to(&format!("/alerts/{alert_id}/act")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ResponseForm {
    #[serde(default)]
    pub csrf: String,
    pub order_id: i64,
    pub response: String,
}

pub async fn respond_form(
    State(state): State<AppState>,
    user: User,
    Path(alert_id): Path<i64>,
    Form(f): Form<ResponseForm>,
) -> Result<Response, WebError> {
    let user = user.form_csrf(&f.csrf);
    user.require(Role::Inspector)?;
    check_note(&f.response)?;
    if f.response.trim().is_empty() {
        return Err(WebError::BadRequest("`response` is required".into()));
    }
    let store = state.acting.store.clone();
    let ts = crate::commands::office_now(state.reader.hot());
    blocking(move || {
        let order = store.order(f.order_id)?;
        if order.alert_id != alert_id {
            return Err(WebError::BadRequest(format!(
                "order {} is not on alert {alert_id}",
                f.order_id
            )));
        }
        Ok(store.respond(f.order_id, f.response.trim(), &user.name, ts)?)
    })
    .await?;
    Ok(Redirect::to(&format!("/alerts/{alert_id}/act")).into_response())
}
