//! Stop-work notices: one action (`POST /api/notices`, or the button on `/notices`) sends the
//! level in force to every site it stops, by kind and phase, and records a pending receipt per
//! site, and sends `stop_work` (`ref` `notice-{id}`) to every device of those sites; a device's
//! answer is its site's receipt (`crate::commands::stop_work`), and inspectors confirm the rest
//! (`POST /api/notices/{id}/receipts/{site}`).

use super::i18n::words;
use super::to_login;
use crate::auth::{pages::whoami, Admin, Inspector, Role, User};
use crate::commands::stop_work::{Sender, StopRef};
use crate::store::acting::{Notice, ReceiptVia};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Nav, Script, Ui};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use dustwatch_protocol::Level;
use maud::html;
use serde::Deserialize;

/// How long a notice's `stop_work` lasts on the device: a warning is issued for a day or more
/// and notices follow each change of level, so a device that never hears the end of one
/// resumes after a day instead of stopping its site for good.
pub const NOTICE_STOP_S: u32 = 86_400;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Notice>>, WebError> {
    let store = state.acting.store.clone();
    Ok(Json(blocking(move || Ok(store.recent_notices(50)?)).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct IssueBody {
    /// The level the notice announces; default the level in force.
    pub level: Option<Level>,
    #[serde(default)]
    pub note: String,
}

async fn do_issue(state: &AppState, user: &User, body: IssueBody) -> Result<Notice, WebError> {
    if body.note.chars().count() > 2000 {
        return Err(WebError::BadRequest(
            "a note is at most 2000 characters".into(),
        ));
    }
    let reader = state.reader.clone();
    let duty = state.acting.duty.clone();
    let store = state.acting.store.clone();
    let by = user.name.clone();
    let commands = state.commands.clone();
    blocking(move || {
        let office_ts = crate::commands::office_now(reader.hot());
        let level = match body.level {
            Some(l) => l,
            None => reader
                .city_levels()?
                .last()
                .map_or(Level::None, |l| l.level),
        };
        let sites: Vec<(String, &'static str)> = reader
            .sites()?
            .into_iter()
            .filter(|s| s.registered)
            .filter_map(|s| {
                duty.stops(level, s.info.kind, s.info.phase)
                    .map(|w| (s.info.id, w))
            })
            .collect();
        if sites.is_empty() {
            return Err(WebError::BadRequest(format!(
                "level {}: the rules stop no registered site's work",
                level.name()
            )));
        }
        let notice = store.issue_notice(level.name(), &by, office_ts, &body.note, &sites)?;
        let from = Sender { by: &by, office_ts };
        for (site, _) in &sites {
            let devices: Vec<String> = reader
                .devices(Some(site))?
                .into_iter()
                .map(|d| d.device)
                .collect();
            let reference = StopRef::Notice(notice.id);
            commands.stop_work(site, &devices, reference, Some(NOTICE_STOP_S), from);
        }
        Ok(notice)
    })
    .await
}

pub async fn issue(
    State(state): State<AppState>,
    Admin(user): Admin,
    body: Option<Json<IssueBody>>,
) -> Result<Json<Notice>, WebError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    Ok(Json(do_issue(&state, &user, body).await?))
}

async fn do_confirm(
    state: &AppState,
    user: &User,
    id: i64,
    site: String,
) -> Result<Notice, WebError> {
    let store = state.acting.store.clone();
    let by = user.name.clone();
    let ts = crate::commands::office_now(state.reader.hot());
    blocking(move || Ok(store.confirm_receipt(id, &site, ReceiptVia::Inspector, &by, ts)?)).await
}

pub async fn confirm(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path((id, site)): Path<(i64, String)>,
) -> Result<Json<Notice>, WebError> {
    Ok(Json(do_confirm(&state, &user, id, site).await?))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub note: String,
}

pub async fn issue_form(
    State(state): State<AppState>,
    user: User,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let user = user.form_csrf(&f.csrf);
    user.require(Role::Admin)?;
    let body = IssueBody {
        level: None,
        note: f.note,
    };
    do_issue(&state, &user, body).await?;
    Ok(Redirect::to("/notices").into_response())
}

pub async fn confirm_form(
    State(state): State<AppState>,
    user: User,
    Path((id, site)): Path<(i64, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let user = user.form_csrf(&f.csrf);
    user.require(Role::Inspector)?;
    do_confirm(&state, &user, id, site).await?;
    Ok(Redirect::to("/notices").into_response())
}

pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    user: Option<User>,
    uri: Uri,
) -> Result<Response, WebError> {
    let Some(user) = user else {
        return Ok(to_login(uri.path()));
    };
    let store = state.acting.store.clone();
    let reader = state.reader.clone();
    let (notices, level) = blocking(move || {
        Ok((
            store.recent_notices(20)?,
            reader
                .city_levels()?
                .last()
                .map_or(Level::None, |l| l.level),
        ))
    })
    .await?;
    let ui = Ui::new(lang, &state);
    let w = words(lang);
    // The level rose past the last notice (or there is none) and it stops work somewhere.
    let due = level != Level::None
        && state
            .acting
            .duty
            .stops(
                level,
                dustwatch_protocol::SiteKind::Construction,
                dustwatch_protocol::Phase::Earthwork,
            )
            .is_some()
        && notices
            .last()
            .and_then(|n| n.level.parse::<Level>().ok())
            .is_none_or(|last| level > last);
    let body = html! {
        (whoami(lang, &user))
        h1 { (w.notices) }
        p { (w.level_now) ": " (lang.level(level)) }
        @if due { p.notice-due role="status" { strong { (w.notice_due) } } }
        @if user.role >= Role::Admin {
            form.notice method="post" action="/notices" {
                input type="hidden" name="csrf" value=(user.csrf());
                p.muted { (w.notice_help) }
                p { label { (w.note) br; textarea name="note" maxlength="2000" {} } }
                p { button type="submit" { (w.issue_notice) } }
            }
        }
        @for n in notices.iter().rev() {
            section.notice id={"notice-" (n.id)} {
                h2 { "#" (n.id) " " (lang.level_word(&n.level)) " — " (ui.time(Some(n.issued_ts))) " · " (n.issued_by) }
                @if !n.note.is_empty() { p { (n.note) } }
                table {
                    thead { tr { th { (w.site) } th {} th { (w.receipts) } } }
                    tbody { @for r in &n.receipts {
                        tr {
                            td { (r.site) }
                            td { (w.work(&r.work)) }
                            td {
                                @if let Some(ts) = r.received_ts {
                                    (w.received) " " (ui.time(Some(ts))) " · " (r.by.as_deref().unwrap_or(""))
                                    " (" @if r.via == Some(ReceiptVia::Device) { (w.via_device) } @else { (w.via_inspector) } ")"
                                } @else {
                                    span.muted { (w.pending) } " "
                                    @if user.role >= Role::Inspector {
                                        form.inline method="post" action={"/notices/" (n.id) "/confirm/" (r.site)} {
                                            input type="hidden" name="csrf" value=(user.csrf());
                                            button type="submit" { (w.confirm) }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
        }
    };
    Ok(layout::page(ui, w.notices, Nav::None, Script::Static, body))
}
