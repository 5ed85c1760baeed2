//! Orders and re-inspections: the JSON API (`/api/alerts/{id}/orders`, `/api/orders/{id}/…`) and
//! the alert's action page (`/alerts/{id}/act`) with its forms, photos included.

use super::i18n::words;
use super::{now_ms, to_login};
use crate::auth::{pages::whoami, Inspector, Role, User};
use crate::store::acting::{NewOrder, NewReinspection};
use crate::store::acting::{Order, OrderKind, OrderState, ReinspectionResult};
use crate::store::{Alert, AlertFilter};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Nav, Script, Ui};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::TimeZone;
use maud::html;
use serde::Deserialize;

/// A re-inspection photo is at most this large.
pub const PHOTO_MAX_BYTES: usize = 5 * 1024 * 1024;

async fn alert(state: &AppState, id: i64) -> Result<Alert, WebError> {
    let reader = state.reader.clone();
    blocking(move || {
        reader
            .alerts(&AlertFilter::default())?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| WebError::NotFound(format!("alert {id}")))
    })
    .await
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Order>>, WebError> {
    let store = state.acting.store.clone();
    Ok(Json(
        blocking(move || Ok(store.orders_of_alert(id)?)).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct IssueBody {
    pub kind: OrderKind,
    pub deadline_ts: Option<i64>,
    #[serde(default)]
    pub note: String,
    /// When the order was given (Unix ms); default now.
    pub ts: Option<i64>,
}

fn check_note(note: &str) -> Result<(), WebError> {
    if note.chars().count() > 2000 {
        return Err(WebError::BadRequest(
            "a note is at most 2000 characters".into(),
        ));
    }
    Ok(())
}

async fn do_issue(
    state: &AppState,
    user: &User,
    alert_id: i64,
    body: IssueBody,
) -> Result<Order, WebError> {
    check_note(&body.note)?;
    let a = alert(state, alert_id).await?;
    if !a.is_open() {
        return Err(WebError::BadRequest(format!("alert {alert_id} is closed")));
    }
    let store = state.acting.store.clone();
    let by = user.name.clone();
    blocking(move || {
        Ok(store.issue_order(&NewOrder {
            alert_id,
            site: &a.site,
            kind: body.kind,
            deadline_ts: body.deadline_ts,
            note: &body.note,
            by: &by,
            ts: body.ts.unwrap_or_else(now_ms),
        })?)
    })
    .await
}

pub async fn issue(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(alert_id): Path<i64>,
    Json(body): Json<IssueBody>,
) -> Result<Json<Order>, WebError> {
    Ok(Json(do_issue(&state, &user, alert_id, body).await?))
}

#[derive(Debug, Deserialize)]
pub struct RespondBody {
    pub response: String,
    pub ts: Option<i64>,
}

pub async fn respond(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(order_id): Path<i64>,
    Json(body): Json<RespondBody>,
) -> Result<Json<Order>, WebError> {
    check_note(&body.response)?;
    if body.response.trim().is_empty() {
        return Err(WebError::BadRequest("`response` is required".into()));
    }
    let store = state.acting.store.clone();
    let ts = body.ts.unwrap_or_else(now_ms);
    Ok(Json(
        blocking(move || Ok(store.respond(order_id, body.response.trim(), &user.name, ts)?))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ReinspectBody {
    pub result: ReinspectionResult,
    #[serde(default)]
    pub note: String,
    /// When the inspector looked (Unix ms); default now.
    pub ts: Option<i64>,
}

async fn do_reinspect(
    state: &AppState,
    user: &User,
    order_id: i64,
    body: ReinspectBody,
    photo: Option<(Vec<u8>, &'static str)>,
) -> Result<crate::store::acting::Reinspection, WebError> {
    check_note(&body.note)?;
    let store = state.acting.store.clone();
    let order = {
        let store = store.clone();
        blocking(move || Ok(store.order(order_id)?)).await?
    };
    let a = alert(state, order.alert_id).await?;
    let by = user.name.clone();
    blocking(move || {
        Ok(store.reinspect(&NewReinspection {
            order_id,
            result: body.result,
            by: &by,
            ts: body.ts.unwrap_or_else(now_ms),
            note: &body.note,
            photo: photo.as_ref().map(|(b, ext)| (b.as_slice(), *ext)),
            severity: a.severity.name(),
        })?)
    })
    .await
}

pub async fn reinspect(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(order_id): Path<i64>,
    Json(body): Json<ReinspectBody>,
) -> Result<Json<crate::store::acting::Reinspection>, WebError> {
    Ok(Json(
        do_reinspect(&state, &user, order_id, body, None).await?,
    ))
}

/// JPEG or PNG by declared type and by content; anything else is refused.
pub fn photo_kind(declared: Option<&str>, bytes: &[u8]) -> Result<&'static str, WebError> {
    let sniffed = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else {
        None
    };
    match (declared, sniffed) {
        (Some(d), Some((mime, ext))) if d == mime => Ok(ext),
        _ => Err(WebError::BadRequest(
            "a photo is a JPEG or PNG image (declared and by content)".into(),
        )),
    }
}

pub async fn photo(
    State(state): State<AppState>,
    _user: User,
    Path(file): Path<String>,
) -> Result<Response, WebError> {
    let store = state.acting.store.clone();
    let name = file.clone();
    let bytes = blocking(move || Ok(store.photo(&name)?)).await?;
    let mime = if file.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

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
    let orders = blocking(move || Ok(store.orders_of_alert(alert_id)?)).await?;
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
        @for o in &orders {
            section.order id={"order-" (o.id)} data-state=(if o.state == OrderState::Open { "open" } else { "passed" }) {
                h3 { (kind_word(o.kind)) " #" (o.id) " — "
                    @if o.state == OrderState::Open { (w.open) } @else { (w.passed) } }
                p { (w.issued) ": " (ui.time(Some(o.issued_ts))) " · " (w.by) ": " (o.issued_by)
                    @if let Some(d) = o.deadline_ts { " · " (w.deadline) ": " (ui.time(Some(d))) } }
                @if !o.note.is_empty() { p { (o.note) } }
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
    blocking(move || {
        let order = store.order(f.order_id)?;
        if order.alert_id != alert_id {
            return Err(WebError::BadRequest(format!(
                "order {} is not on alert {alert_id}",
                f.order_id
            )));
        }
        Ok(store.respond(f.order_id, f.response.trim(), &user.name, now_ms())?)
    })
    .await?;
    Ok(Redirect::to(&format!("/alerts/{alert_id}/act")).into_response())
}
