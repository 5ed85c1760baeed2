//! Orders and re-inspections over the JSON API (`/api/alerts/{id}/orders`, `/api/orders/{id}/…`),
//! and what both the API and the action page's forms do: a stop-work order sends `stop_work` to
//! the site's devices, its passed re-inspection sends `resume_work`; an order is shown with its
//! devices' answers.

use crate::auth::{Inspector, User};
use crate::commands::stop_work::{Sender, StopRef};
use crate::commands::Commands;
use crate::store::acting::{NewOrder, NewReinspection};
use crate::store::acting::{Order, OrderKind, ReinspectionResult};
use crate::store::commands::CommandRow;
use crate::store::{Alert, AlertFilter, StoreReader};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A re-inspection photo is at most this large.
pub const PHOTO_MAX_BYTES: usize = 5 * 1024 * 1024;

pub(super) async fn alert(state: &AppState, id: i64) -> Result<Alert, WebError> {
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

/// An order as the API shows it: with the commands sent for it and the devices' answers.
#[derive(Debug, Serialize)]
pub struct OrderView {
    #[serde(flatten)]
    pub order: Order,
    /// `stop_work` when issued, `resume_work` when passed; oldest first.
    pub device_commands: Vec<CommandRow>,
}

/// The commands sent for an order, oldest first. Blocking.
pub(super) fn device_commands(
    commands: &Commands,
    order_id: i64,
) -> Result<Vec<CommandRow>, WebError> {
    Ok(commands.of_ref(StopRef::Order(order_id))?)
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<OrderView>>, WebError> {
    let store = state.acting.store.clone();
    let commands = state.commands.clone();
    Ok(Json(
        blocking(move || {
            store
                .orders_of_alert(id)?
                .into_iter()
                .map(|order| {
                    Ok(OrderView {
                        device_commands: device_commands(&commands, order.id)?,
                        order,
                    })
                })
                .collect()
        })
        .await?,
    ))
}

/// The devices that have reported from `site`: where its commands go.
fn site_devices(reader: &Arc<dyn StoreReader>, site: &str) -> Result<Vec<String>, WebError> {
    Ok(reader
        .devices(Some(site))?
        .into_iter()
        .map(|d| d.device)
        .collect())
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

pub(super) fn check_note(note: &str) -> Result<(), WebError> {
    if note.chars().count() > 2000 {
        return Err(WebError::BadRequest(
            "a note is at most 2000 characters".into(),
        ));
    }
    Ok(())
}

pub(super) async fn do_issue(
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
    let (reader, commands) = (state.reader.clone(), state.commands.clone());
    blocking(move || {
        let office_ts = crate::commands::office_now(reader.hot());
        let order = store.issue_order(&NewOrder {
            alert_id,
            site: &a.site,
            kind: body.kind,
            deadline_ts: body.deadline_ts,
            note: &body.note,
            by: &by,
            ts: body.ts.unwrap_or(office_ts),
        })?;
        if order.kind == OrderKind::StopWork {
            // Until resumed: the order's passed re-inspection sends `resume_work`.
            let devices = site_devices(&reader, &a.site)?;
            let from = Sender { by: &by, office_ts };
            commands.stop_work(&a.site, &devices, StopRef::Order(order.id), None, from);
        }
        Ok(order)
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
    let ts = body
        .ts
        .unwrap_or_else(|| crate::commands::office_now(state.reader.hot()));
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

pub(super) async fn do_reinspect(
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
    let (reader, commands) = (state.reader.clone(), state.commands.clone());
    blocking(move || {
        let office_ts = crate::commands::office_now(reader.hot());
        let done = store.reinspect(&NewReinspection {
            order_id,
            result: body.result,
            by: &by,
            ts: body.ts.unwrap_or(office_ts),
            note: &body.note,
            photo: photo.as_ref().map(|(b, ext)| (b.as_slice(), *ext)),
            severity: a.severity.name(),
        })?;
        if done.result == ReinspectionResult::Passed && order.kind == OrderKind::StopWork {
            let devices = site_devices(&reader, &order.site)?;
            let from = Sender { by: &by, office_ts };
            commands.resume_work(&order.site, &devices, StopRef::Order(order_id), from);
        }
        Ok(done)
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
