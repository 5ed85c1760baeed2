//! Dashboards on the web: `/dashboards` lists them, `/dashboards/{name}` shows one (panels as SVG
//! images that refresh every `refresh_s`), `/dashboards/{name}/{i}.svg|.png` renders panel `i`.
//! Definitions come from `./dashboards/{name}.toml`, else the shipped ones.

use super::charts::{image, split_file};
use super::i18n::Lang;
use super::layout::{self, Nav, Script, Ui};
use super::sites::fleet_now;
use super::{blocking, AppState, WebError};
use crate::charts::data::Overlays;
use crate::dashboard::{self, DashboardError};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;

/// Where dashboard files are looked up (relative to the working directory).
pub const DIR: &str = "dashboards";

fn load(name: &str) -> Result<dashboard::Dashboard, WebError> {
    dashboard::find(std::path::Path::new(DIR), name).map_err(|e| match e {
        DashboardError::Unknown(n) => WebError::NotFound(format!("dashboard `{n}`")),
        other => WebError::BadRequest(other.to_string()),
    })
}

/// Where dashboards are defined and how to render them to files, in the page's language.
fn definitions_note(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "看板定义在 dashboards/*.toml；导出为图片文件：",
        Lang::En => "Definitions: dashboards/*.toml. Render to files:",
    }
}

pub async fn list(State(state): State<AppState>, lang: Lang) -> Response {
    let ui = Ui::new(lang, &state);
    let names = dashboard::names(std::path::Path::new(DIR));
    let body = html! {
        h1 { (ui.t().nav_dashboards) }
        ul { @for n in &names { li { a href={ "/dashboards/" (n) } { (n) } } } }
        p.muted {
            (definitions_note(lang)) " "
            code { "dustwatch render --dashboard dashboards/office.toml --out DIR" }
        }
    };
    // Live: the header still shows the live clock and city level.
    layout::page(
        ui,
        ui.t().nav_dashboards,
        Nav::Dashboards,
        Script::Live,
        body,
    )
}

/// One dashboard: its panels as images that dustwatch.js reloads every `refresh_s` (at least 5 s).
pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let d = load(&name)?;
    let refresh_ms = u64::from(d.refresh_s.max(5)) * 1000;
    let body = html! {
        h1 { (d.title) }
        div #panels data-refresh-ms=(refresh_ms) {
            @for (i, p) in d.panels.iter().enumerate() {
                @let p = p.get_ref();
                div.panel {
                    img.chart.dash alt=(p.title) data-src={ "/dashboards/" (name) "/" (i) ".svg" }
                        src={ "/dashboards/" (name) "/" (i) ".svg" } width=(p.width) height=(p.height);
                }
            }
        }
    };
    Ok(layout::page(
        ui,
        &d.title,
        Nav::Dashboards,
        Script::Page("dashboard"),
        body,
    ))
}

pub async fn panel(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (idx, format) = split_file(&file)?;
    let idx: usize = idx
        .parse()
        .map_err(|_| WebError::NotFound(format!("panel `{idx}`")))?;
    let d = load(&name)?;
    let panel = d
        .panels
        .get(idx)
        .map(|p| p.get_ref().clone())
        .ok_or_else(|| WebError::NotFound(format!("panel {idx} of `{name}`")))?;
    let bytes = blocking(move || {
        let overlays = Overlays {
            tz: state.tz,
            limits: state.limits.as_ref().clone(),
            ..Default::default()
        };
        dashboard::render_panel(
            state.reader.as_ref(),
            &panel,
            fleet_now(&state),
            &overlays,
            format,
        )
        .map_err(|e| WebError::Internal(e.to_string()))
    })
    .await?;
    Ok(image(format, bytes))
}
