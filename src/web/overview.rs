//! The overview page: every site as a card with status colour, latest values, AQI category, data
//! age (event time) and open alerts; the city level control. Server-rendered, then kept current by
//! the `/events` stream (`live.rs`) without reloading.

use super::html::{escape, num};
use super::layout;
use super::sites::{site_views, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, StoreReader};
use axum::extract::State;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write;

/// The status word of a site (`ok`, `warning`, ...), as the API spells it.
pub fn status_name(v: &SiteView) -> String {
    serde_json::to_value(v.status)
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Open alerts per site.
pub fn open_alerts(state: &AppState) -> Result<HashMap<String, usize>, WebError> {
    let open = state.reader.alerts(&AlertFilter {
        state: Some("open".into()),
        ..Default::default()
    })?;
    let mut by_site = HashMap::new();
    for a in open {
        *by_site.entry(a.site).or_insert(0) += 1;
    }
    Ok(by_site)
}

fn card(v: &SiteView, alerts: usize) -> String {
    let l = v.latest.as_ref().map(|l| &l.reading);
    let status = status_name(v);
    let (aqi_colour, aqi_text) = match (v.aqi, v.aqi_category) {
        (Some(a), Some(c)) => (c.colour, format!("AQI {a} {}", c.name)),
        _ => ("transparent", "AQI —".to_string()),
    };
    format!(
        "<div class=\"card {status}\" data-site=\"{id}\"><a href=\"/sites/{id}\">\
         <div class=name>{name}</div><div class=sub>{id} · {street} · {kind} · \
         <span data-f=status>{status}</span></div>\
         <div class=vals><div><b data-f=pm25>{pm25}</b><span>PM2.5</span></div>\
         <div><b data-f=pm10>{pm10}</b><span>PM10</span></div>\
         <div><b data-f=tsp>{tsp}</b><span>TSP</span></div>\
         <div><b data-f=noise>{noise}</b><span>dB(A)</span></div></div>\
         <span class=aqi data-f=aqi style=\"background:{aqi_colour}\">{aqi_text}</span> \
         <span class=sub>age <span data-f=age>{age}</span></span> \
         <span class=\"badge{none}\" data-f=alerts>{alerts} open</span></a></div>",
        id = escape(&v.info.id),
        name = escape(&v.info.name),
        street = escape(&v.info.street),
        kind = v.info.kind.name(),
        pm25 = num(l.and_then(|r| r.pm25)),
        pm10 = num(l.and_then(|r| r.pm10)),
        tsp = num(l.and_then(|r| r.tsp)),
        noise = num(l.and_then(|r| r.noise_dba)),
        age = v.data_age_s.map_or("—".to_string(), |a| format!("{a} s")),
        none = if alerts == 0 { " none" } else { "" },
    )
}

/// The body of the overview (also measured by the benchmark).
pub fn render(state: &AppState) -> Result<String, WebError> {
    let views = site_views(state)?;
    let alerts = open_alerts(state)?;
    let level = state.reader.city_levels()?.last().map(|l| l.level);
    let mut cards = String::with_capacity(views.len() * 700);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in &views {
        *counts.entry(status_word(v)).or_default() += 1;
        cards.push_str(&card(v, alerts.get(&v.info.id).copied().unwrap_or(0)));
    }
    let mut summary = String::new();
    for (k, n) in counts {
        let _ = write!(summary, "{n} {k} · ");
    }
    let level_name = level.map_or("none", |l| l.name());
    let options: String = dustwatch_protocol::Level::ALL
        .iter()
        .map(|l| {
            let sel = if l.name() == level_name {
                " selected"
            } else {
                ""
            };
            format!("<option{sel}>{}</option>", l.name())
        })
        .collect();
    let body = format!(
        "<h1>Sites <span class=muted id=summary>{n} sites · {summary}data age in event time</span></h1>\
         <div class=grid id=sites>{cards}</div>\
         <h2>City warning level</h2>\
         <form class=inline id=level-form><span class=\"level {level_name}\" id=level-now>{level_name}</span>\
         <select name=level>{options}</select>\
         <input name=token type=password placeholder=\"write token\" autocomplete=off>\
         <button type=submit>Set level</button><span class=msg id=level-msg></span></form>",
        n = views.len(),
    );
    Ok(body)
}

fn status_word(v: &SiteView) -> &'static str {
    use super::sites::SiteStatus::*;
    match v.status {
        Ok => "ok",
        Warning => "warning",
        Violation => "violation",
        Offline => "offline",
        Unregistered => "unregistered",
    }
}

const SCRIPT: &str = r#"
document.getElementById('level-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target, msg = document.getElementById('level-msg');
  const body = { level: f.level.value };
  if (window.dwNow) body.ts = window.dwNow;
  try { const r = await dw.call('PUT', '/api/city/level', body); msg.textContent = 'set to ' + r.level; }
  catch (e) { msg.textContent = e.message; }
});
live.onSites = (sites) => {
  for (const s of sites) {
    const card = document.querySelector('[data-site="' + CSS.escape(s.id) + '"]');
    if (!card) continue;
    card.className = 'card ' + s.status;
    const set = (f, v) => { const e = card.querySelector('[data-f=' + f + ']'); if (e) e.textContent = v; };
    set('status', s.status); set('pm25', s.pm25); set('pm10', s.pm10); set('tsp', s.tsp); set('noise', s.noise);
    set('age', s.age); set('aqi', s.aqi_text); set('alerts', s.alerts + ' open');
    const a = card.querySelector('[data-f=aqi]'); if (a) a.style.background = s.aqi_colour;
    const b = card.querySelector('[data-f=alerts]'); if (b) b.className = 'badge' + (s.alerts ? '' : ' none');
  }
};
live.onLevel = (l) => { const e = document.getElementById('level-now'); e.textContent = l; e.className = 'level ' + l; };
"#;

pub async fn page(State(state): State<AppState>) -> Result<Response, WebError> {
    let body = blocking(move || render(&state)).await?;
    Ok(layout::page(
        "Overview",
        "Overview",
        &body,
        &format!("{}{SCRIPT}", super::live::CLIENT),
    ))
}
