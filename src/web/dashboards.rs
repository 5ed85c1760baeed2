//! Dashboards on the web: `/dashboards` lists them, `/dashboards/{name}` shows one (panels as SVG
//! images that refresh every `refresh_s`), `/dashboards/{name}/{i}.svg|.png` renders panel `i`.
//! Definitions come from `./dashboards/{name}.toml`, else the shipped ones.

use super::charts::{fleet_now, image, split_file};
use super::html::escape;
use super::i18n::Lang;
use super::layout::{self, Nav, Ui};
use super::{blocking, AppState, WebError};
use crate::charts::data::Overlays;
use crate::dashboard::{self, DashboardError};
use axum::extract::{Path, State};
use axum::response::Response;
use std::fmt::Write;

/// Where dashboard files are looked up (relative to the working directory).
pub const DIR: &str = "dashboards";

fn load(name: &str) -> Result<dashboard::Dashboard, WebError> {
    dashboard::find(std::path::Path::new(DIR), name).map_err(|e| match e {
        DashboardError::Unknown(n) => WebError::NotFound(format!("dashboard `{n}`")),
        other => WebError::BadRequest(other.to_string()),
    })
}

pub async fn list(State(state): State<AppState>, lang: Lang) -> Response {
    let ui = Ui::new(lang, &state);
    let mut b = format!("<h1>{}</h1><ul>", ui.t().nav_dashboards);
    for n in dashboard::names(std::path::Path::new(DIR)) {
        let n = escape(&n);
        let _ = write!(b, "<li><a href=\"/dashboards/{n}\">{n}</a></li>");
    }
    b.push_str("</ul><p class=muted>Definitions: dashboards/*.toml. Render to files: <code>dustwatch render --dashboard dashboards/office.toml --out DIR</code>.</p>");
    // A (no-op) script: the header still shows the live clock and city level.
    layout::page(ui, ui.t().nav_dashboards, Nav::Dashboards, &b, ";")
}

pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let d = load(&name)?;
    let ename = escape(&name);
    let mut b = format!("<h1>{}</h1>", escape(&d.title));
    for (i, p) in d.panels.iter().enumerate() {
        let p = p.get_ref();
        let _ = write!(
            b,
            "<div class=panel><img class=\"chart dash\" alt=\"{title}\" data-src=\"/dashboards/{ename}/{i}.svg\" \
             src=\"/dashboards/{ename}/{i}.svg\" width={w} height={h}></div>",
            title = escape(&p.title),
            w = p.width,
            h = p.height,
        );
    }
    let script = format!(
        "setInterval(() => document.querySelectorAll('img.dash').forEach(i => {{ i.src = i.dataset.src + '?t=' + Date.now(); }}), {});",
        u64::from(d.refresh_s.max(5)) * 1000
    );
    Ok(layout::page(ui, &d.title, Nav::Dashboards, &b, &script))
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
