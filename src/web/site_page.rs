//! The site page (`/sites/{id}`): latest values, the PM chart over a chosen range, the AQI
//! calendar, CSV export links, device status and the site's alert history. Phone-first layout.

use super::charts::{find_site, fleet_now};
use super::html::{escape, num};
use super::layout;
use super::live::CLIENT;
use super::overview::status_name;
use super::sites::site_views;
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, StoreReader};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::fmt::Write;

#[derive(Debug, Deserialize)]
pub struct SiteQuery {
    /// `6h`, `24h`, `7d` or `30d`.
    pub range: Option<String>,
}

const RANGES: [(&str, i64); 4] = [
    ("6h", 6 * 3_600_000),
    ("24h", 86_400_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
];

fn time(ms: Option<i64>, tz: chrono_tz::Tz) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

fn render(state: &AppState, id: &str, range: &str) -> Result<String, WebError> {
    let site = find_site(state, id)?;
    let view = site_views(state)?.into_iter().find(|v| v.info.id == id);
    let span = RANGES
        .iter()
        .find(|(n, _)| *n == range)
        .map_or(86_400_000, |r| r.1);
    let to = state
        .reader
        .hot()
        .latest(id)
        .map_or_else(|| fleet_now(state), |l| l.reading.ts)
        + 1;
    let from = to - span;
    let eid = escape(&site.id);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{name} <span class=muted>{eid} · {street} · {kind} · {phase}</span></h1>",
        name = escape(&site.name),
        street = escape(&site.street),
        kind = site.kind.name(),
        phase = site.phase.name(),
    );
    if let Some(v) = &view {
        let l = v.latest.as_ref().map(|l| &l.reading);
        let (colour, aqi) = match (v.aqi, v.aqi_category) {
            (Some(a), Some(c)) => (c.colour, format!("AQI {a} {} {}", c.name, c.name_zh)),
            _ => ("transparent", "AQI —".into()),
        };
        let _ = write!(
            b,
            "<div class=\"card {status}\" data-site=\"{eid}\"><div class=vals>\
             <div><b data-f=pm25>{}</b><span>PM2.5 µg/m³</span></div><div><b data-f=pm10>{}</b><span>PM10</span></div>\
             <div><b data-f=tsp>{}</b><span>TSP</span></div><div><b data-f=noise>{}</b><span>dB(A)</span></div></div>\
             <span class=aqi data-f=aqi style=\"background:{colour}\">{aqi}</span> \
             <span class=sub>status <span data-f=status>{status}</span> · age <span data-f=age>{age}</span> · \
             newest reading {newest}</span></div>",
            num(l.and_then(|r| r.pm25)),
            num(l.and_then(|r| r.pm10)),
            num(l.and_then(|r| r.tsp)),
            num(l.and_then(|r| r.noise_dba)),
            status = status_name(v),
            age = v.data_age_s.map_or("—".into(), |a| format!("{a} s")),
            newest = time(l.map(|r| r.ts), state.tz),
        );
    }
    b.push_str("<h2>PM over ");
    for (n, _) in RANGES {
        if n == range {
            let _ = write!(b, "<b>{n}</b> ");
        } else {
            let _ = write!(b, "<a href=\"/sites/{eid}?range={n}\">{n}</a> ");
        }
    }
    let _ = write!(
        b,
        "</h2><div class=panel><img class=chart id=site-chart alt=\"PM chart of {eid}\" \
         src=\"/charts/sites/{eid}.svg?from={from}&amp;to={to}\" width=900 height=360></div>\
         <p class=muted>Shaded: alert periods; background band: city warning level; triangles: sprinkling runs; \
         lines: limits. PNG: <a href=\"/charts/sites/{eid}.png?from={from}&amp;to={to}\">chart.png</a>. \
         CSV (1-minute): <a href=\"/api/sites/{eid}/series.csv?metric=pm25&amp;from={from}&amp;to={to}\">PM2.5</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=pm10&amp;from={from}&amp;to={to}\">PM10</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=tsp&amp;from={from}&amp;to={to}\">TSP</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=noise_dba&amp;from={from}&amp;to={to}\">noise</a></p>\
         <div class=panel><img class=chart alt=\"AQI calendar of {eid}\" src=\"/charts/aqi/{eid}.svg\" width=560 height=240></div>"
    );

    b.push_str("<h2>Devices</h2><table><thead><tr><th>Device</th><th>State</th><th>Firmware</th><th class=hide-s>Boot</th><th class=hide-s>Interval</th><th>Last seen</th></tr></thead><tbody>");
    for d in state.reader.devices(Some(id))? {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n hide-s\">{}</td><td class=\"n hide-s\">{}</td><td>{}</td></tr>",
            escape(&d.device),
            escape(d.state.as_deref().unwrap_or("—")),
            escape(d.fw.as_deref().unwrap_or("—")),
            d.boot.map_or("—".into(), |x| x.to_string()),
            d.interval_s.map_or("—".into(), |x| format!("{x} s")),
            time(d.last_seen_ms, state.tz),
        );
    }
    b.push_str("</tbody></table>");

    let alerts = state.reader.alerts(&AlertFilter {
        site: Some(id.to_string()),
        limit: Some(200),
        ..Default::default()
    })?;
    let _ = write!(
        b,
        "<h2>Alert history <a class=muted href=\"/alerts?site={eid}&amp;state=all\">(act on them)</a></h2>\
         <table><thead><tr><th>#</th><th>Rule</th><th>Severity</th><th>State</th><th>Opened</th><th class=hide-s>Cleared</th><th class=hide-s>Closed</th><th>Acknowledged</th></tr></thead><tbody>"
    );
    if alerts.is_empty() {
        b.push_str("<tr><td colspan=8 class=muted>no alerts</td></tr>");
    }
    for a in &alerts {
        let ack = if a.acknowledged {
            format!(
                "{} — {}",
                escape(a.ack_by.as_deref().unwrap_or("")),
                escape(a.ack_comment.as_deref().unwrap_or(""))
            )
        } else {
            "no".into()
        };
        let _ = write!(
            b,
            "<tr><td class=n>{}</td><td>{}</td><td class=\"sev-{sev}\">{sev}</td><td>{}</td><td>{}</td><td class=hide-s>{}</td><td class=hide-s>{}</td><td>{ack}</td></tr>",
            a.id,
            escape(&a.rule),
            escape(&a.state),
            time(Some(a.opened_ts), state.tz),
            time(a.cleared_ts, state.tz),
            time(a.closed_ts, state.tz),
            sev = escape(&a.severity),
        );
    }
    b.push_str("</tbody></table>");
    Ok(b)
}

const SCRIPT: &str = r#"
let lastChart = 0;
live.onSites = (sites) => {
  for (const s of sites) {
    const card = document.querySelector('[data-site="' + CSS.escape(s.id) + '"]');
    if (!card) continue;
    card.className = 'card ' + s.status;
    const set = (f, v) => { const e = card.querySelector('[data-f=' + f + ']'); if (e) e.textContent = v; };
    set('status', s.status); set('pm25', s.pm25); set('pm10', s.pm10); set('tsp', s.tsp); set('noise', s.noise);
    set('age', s.age); set('aqi', s.aqi_text);
    const a = card.querySelector('[data-f=aqi]'); if (a) a.style.background = s.aqi_colour;
  }
  // Redraw the chart at most every 15 s, sliding its window to the newest data.
  const img = document.getElementById('site-chart');
  if (img && Date.now() - lastChart > 15000) {
    lastChart = Date.now();
    const u = new URL(img.src, location.href);
    const span = Number(u.searchParams.get('to')) - Number(u.searchParams.get('from'));
    if (window.dwNow && span > 0) { u.searchParams.set('to', window.dwNow + 1); u.searchParams.set('from', window.dwNow + 1 - span); img.src = u.toString(); }
  }
};
"#;

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SiteQuery>,
) -> Result<Response, WebError> {
    let range = q.range.unwrap_or_else(|| "24h".into());
    let title = id.clone();
    let body = blocking(move || render(&state, &id, &range)).await?;
    Ok(layout::page(
        &title,
        "",
        &body,
        &format!("{CLIENT}{SCRIPT}"),
    ))
}
