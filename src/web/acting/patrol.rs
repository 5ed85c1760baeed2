//! The night patrol: tonight's list (22:00–02:00 local) as a phone page, a check-in per site
//! (working, not working, rectified) stamped with time and inspector, and the list on the
//! overview while the patrol is on.

use super::i18n::words;
use super::{now_ms, to_login};
use crate::auth::{pages::whoami, Inspector, Role, User};
use crate::store::acting::{ActingStore, Checkin, PatrolResult};
use crate::store::{AlertFilter, StateFilter, StoreReader};
use crate::web::i18n::Lang;
use crate::web::layout::{self, Nav, Script, Ui};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{NaiveDate, Timelike};
use dustwatch_protocol::RuleKind;
use dustwatch_protocol::SiteKind;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// The patrol runs from this local hour to `END_HOUR` the next morning.
pub const START_HOUR: u32 = 22;
pub const END_HOUR: u32 = 2;

/// The night `now` belongs to (the local date it started on) and whether the patrol is on.
pub fn night_of(now_ms: i64, tz: chrono_tz::Tz) -> (NaiveDate, bool) {
    let local = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&tz);
    let hour = local.hour();
    // Before noon the night began the day before.
    let night = if hour < 12 {
        local.date_naive().pred_opt().unwrap_or(local.date_naive())
    } else {
        local.date_naive()
    };
    (night, !(END_HOUR..START_HOUR).contains(&hour))
}

/// One site on tonight's list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PatrolSite {
    pub site: String,
    pub name: String,
    pub street: String,
    /// Night work or noise alerts open, or night work in the last days' figures.
    pub at_risk: bool,
    pub last: Option<Checkin>,
}

/// Tonight's list: every working site (night work is forbidden to all), the ones at risk first.
pub fn tonight(
    reader: &dyn StoreReader,
    store: &ActingStore,
    night: NaiveDate,
) -> Result<Vec<PatrolSite>, WebError> {
    let open = reader.alerts(&AlertFilter {
        state: Some(StateFilter::Open),
        ..Default::default()
    })?;
    let mut risky: HashSet<String> = open
        .into_iter()
        .filter(|a| matches!(a.kind, RuleKind::Night | RuleKind::Noise))
        .map(|a| a.site)
        .collect();
    for d in reader.days(night - chrono::Days::new(7), night)? {
        if d.night_activity_minutes > 0 {
            risky.insert(d.site);
        }
    }
    let checkins = store.checkins(&night.to_string())?;
    let mut last: HashMap<String, Checkin> = HashMap::new();
    for c in checkins {
        last.insert(c.site.clone(), c);
    }
    let mut list: Vec<PatrolSite> = reader
        .sites()?
        .into_iter()
        .filter(|s| s.registered && s.info.kind != SiteKind::Reference)
        .map(|s| PatrolSite {
            at_risk: risky.contains(&s.info.id),
            last: last.remove(&s.info.id),
            site: s.info.id,
            name: s.info.name,
            street: s.info.street,
        })
        .collect();
    list.sort_by(|a, b| b.at_risk.cmp(&a.at_risk).then(a.site.cmp(&b.site)));
    Ok(list)
}

fn list_markup(ui: Ui, list: &[PatrolSite], user: Option<&User>) -> Markup {
    let w = words(ui.lang);
    html! {
        @if list.is_empty() { p.muted { (w.patrol_empty) } }
        ul.patrol {
            @for p in list {
                li.patrol-site data-site=(p.site) data-at-risk=(p.at_risk) {
                    b { (p.name) } " " span.muted { (p.street) }
                    @if p.at_risk { " " span.badge.warn { (w.at_risk) } }
                    @if let Some(c) = &p.last {
                        div.checkin data-result=(c.result.name()) {
                            (w.last_checkin) ": " (w.patrol_result(c.result)) " · "
                            (ui.time(Some(c.ts))) " · " (c.by)
                        }
                    }
                    @if let Some(u) = user.filter(|u| u.role >= Role::Inspector) {
                        form.checkin method="post" action={"/patrol/" (p.site)} {
                            input type="hidden" name="csrf" value=(u.csrf());
                            input name="note" maxlength="500" placeholder=(w.note);
                            @for r in PatrolResult::ALL {
                                button type="submit" name="result" value=(r.name()) { (w.patrol_result(r)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The overview's section: tonight's list while the patrol is on, else nothing.
pub fn overview_section(state: &AppState, ui: Ui) -> Result<String, WebError> {
    overview_section_at(state.reader.as_ref(), &state.acting.store, ui, now_ms())
}

pub fn overview_section_at(
    reader: &dyn StoreReader,
    store: &ActingStore,
    ui: Ui,
    now: i64,
) -> Result<String, WebError> {
    let (night, on) = night_of(now, ui.tz);
    if !on {
        return Ok(super::overview_links(ui.lang));
    }
    let list = tonight(reader, store, night)?;
    let w = words(ui.lang);
    Ok(html! {
        (maud::PreEscaped(super::overview_links(ui.lang)))
        section id="patrol-tonight" {
            h2 { a href="/patrol" { (w.patrol_tonight) } }
            (list_markup(ui, &list, None))
        }
    }
    .into_string())
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
    let ui = Ui::new(lang, &state);
    let (night, _) = night_of(now_ms(), ui.tz);
    let st = state.clone();
    let list = blocking(move || tonight(st.reader.as_ref(), &st.acting.store, night)).await?;
    let w = words(lang);
    let body = html! {
        (whoami(lang, &user))
        h1 { (w.patrol_tonight) " " span.muted { (night) } }
        (list_markup(ui, &list, Some(&user)))
    };
    Ok(layout::page(ui, w.patrol, Nav::None, Script::Static, body))
}

#[derive(Debug, Deserialize)]
pub struct NightQuery {
    pub night: Option<NaiveDate>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<NightQuery>,
) -> Result<Json<Vec<Checkin>>, WebError> {
    let night = q.night.unwrap_or_else(|| night_of(now_ms(), state.tz).0);
    let store = state.acting.store.clone();
    Ok(Json(
        blocking(move || Ok(store.checkins(&night.to_string())?)).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct CheckinBody {
    pub result: PatrolResult,
    #[serde(default)]
    pub note: String,
}

async fn do_check_in(
    state: &AppState,
    user: &User,
    site: String,
    body: CheckinBody,
) -> Result<Checkin, WebError> {
    if body.note.chars().count() > 500 {
        return Err(WebError::BadRequest(
            "a note is at most 500 characters".into(),
        ));
    }
    let st = state.clone();
    let by = user.name.clone();
    blocking(move || {
        let known = st
            .reader
            .sites()?
            .iter()
            .any(|s| s.registered && s.info.id == site);
        if !known {
            return Err(WebError::NotFound(format!("site {site}")));
        }
        let now = now_ms();
        let (night, _) = night_of(now, st.tz);
        Ok(st.acting.store.check_in(
            &night.to_string(),
            &site,
            body.result,
            &by,
            now,
            &body.note,
        )?)
    })
    .await
}

pub async fn check_in(
    State(state): State<AppState>,
    Inspector(user): Inspector,
    Path(site): Path<String>,
    Json(body): Json<CheckinBody>,
) -> Result<Json<Checkin>, WebError> {
    Ok(Json(do_check_in(&state, &user, site, body).await?))
}

#[derive(Debug, Deserialize)]
pub struct CheckinForm {
    #[serde(default)]
    pub csrf: String,
    pub result: PatrolResult,
    #[serde(default)]
    pub note: String,
}

pub async fn check_in_form(
    State(state): State<AppState>,
    user: User,
    Path(site): Path<String>,
    Form(f): Form<CheckinForm>,
) -> Result<Response, WebError> {
    let user = user.form_csrf(&f.csrf);
    user.require(Role::Inspector)?;
    let body = CheckinBody {
        result: f.result,
        note: f.note,
    };
    do_check_in(&state, &user, site, body).await?;
    Ok(Redirect::to("/patrol").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_night_starts_the_evening_before() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().expect("zone");
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp_millis()
        };
        let d = |s: &str| s.parse::<NaiveDate>().expect("date");
        assert_eq!(
            night_of(at("2026-11-29T22:30:00+08:00"), tz),
            (d("2026-11-29"), true)
        );
        assert_eq!(
            night_of(at("2026-11-30T01:59:00+08:00"), tz),
            (d("2026-11-29"), true)
        );
        assert_eq!(
            night_of(at("2026-11-30T02:00:00+08:00"), tz),
            (d("2026-11-29"), false)
        );
        assert_eq!(
            night_of(at("2026-11-29T21:59:00+08:00"), tz),
            (d("2026-11-29"), false)
        );
    }
    #[test]
    fn the_overview_lists_tonights_patrol_only_during_the_patrol() {
        use crate::store::{SqliteStore, StoreConfig, StoreWriter};
        use dustwatch_protocol::SiteInfo;
        let dir = tempfile::tempdir().expect("dir");
        let mut writer = SqliteStore::open(
            StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            false,
        )
        .expect("store");
        let site = |id: &str, name: &str, kind| SiteInfo {
            id: id.into(),
            name: name.into(),
            street: "柳寨街道".into(),
            kind,
            phase: Default::default(),
            lat: None,
            lon: None,
            reference: None,
        };
        writer
            .upsert_sites(&[
                site("s1", "迎宾路3号地块", SiteKind::Construction),
                site("ref", "国控站", SiteKind::Reference),
            ])
            .expect("sites");
        let reader = writer.reader().expect("reader");
        let store = ActingStore::open(dir.path()).expect("acting store");
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().expect("zone");
        let ui = Ui { lang: Lang::Zh, tz };
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp_millis()
        };
        let night = at("2026-11-29T23:10:00+08:00");
        store
            .check_in(
                "2026-11-29",
                "s1",
                PatrolResult::NotWorking,
                "li",
                night,
                "",
            )
            .expect("check-in");
        let html = overview_section_at(&reader, &store, ui, night).expect("section");
        assert!(html.contains("今晚巡查清单"), "{html}");
        assert!(
            html.contains("迎宾路3号地块") && !html.contains("国控站"),
            "{html}"
        );
        assert!(html.contains("未施工") && html.contains("li"), "{html}");
        // No forms on the wall screen.
        assert!(!html.contains("<form"), "{html}");
        let day = at("2026-11-29T15:00:00+08:00");
        let html = overview_section_at(&reader, &store, ui, day).expect("section");
        assert!(
            !html.contains("patrol-tonight") && html.contains("/patrol"),
            "{html}"
        );
    }
}
