//! The site page (`/sites/{id}`): latest values, the PM chart over a chosen range, the AQI
//! calendar, CSV export links, device status and the site's alert history. Phone-first layout.

use super::charts::{find_site, fleet_now};
use super::html::{escape, num};
use super::i18n::Lang;
use super::layout::{self, Nav, Ui};
use super::overview::{aqi_badge, status_name};
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

fn render(state: &AppState, ui: Ui, id: &str, range: &str) -> Result<String, WebError> {
    let t = ui.t();
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
        "<h1>{name} <span class=muted>{street} · {kind} · {phase} · {eid}</span></h1>",
        name = escape(&site.name),
        street = escape(&site.street),
        kind = ui.lang.kind(site.kind.name()),
        phase = ui.lang.kind(site.phase.name()),
    );
    if let Some(v) = &view {
        let l = v.latest.as_ref().map(|l| &l.reading);
        let (aqi, colour, aqi_ink) = aqi_badge(ui.lang, v);
        let status = status_name(v);
        let _ = write!(
            b,
            "<div class=\"card {status}\" data-site=\"{eid}\"><div class=vals>\
             <div><b data-f=pm25>{}</b><span>PM2.5 µg/m³</span></div><div><b data-f=pm10>{}</b><span>PM10</span></div>\
             <div><b data-f=tsp>{}</b><span>TSP</span></div><div><b data-f=noise>{}</b><span>dB(A)</span></div></div>\
             <span class=aqi data-f=aqi style=\"background:{colour};color:{aqi_ink}\">{aqi}</span> \
             <span class=sub>{st_word} <span class=\"st {status}\" data-f=status>{status_word}</span> · {age_word} <span data-f=age>{age}</span> · \
             {newest_word} {newest}</span></div>",
            num(l.and_then(|r| r.pm25)),
            num(l.and_then(|r| r.pm10)),
            num(l.and_then(|r| r.tsp)),
            num(l.and_then(|r| r.noise_dba)),
            st_word = t.status,
            status_word = ui.lang.status(&status),
            age_word = t.age,
            age = v.data_age_s.map_or("—".into(), |a| format!("{a} s")),
            newest_word = t.newest_reading,
            newest = ui.time(l.map(|r| r.ts)),
        );
    }
    let _ = write!(b, "<h2>{} ", t.pm_over);
    for (n, _) in RANGES {
        if n == range {
            let _ = write!(b, "<b>{n}</b> ");
        } else {
            let _ = write!(b, "<a href=\"/sites/{eid}?range={n}\">{n}</a> ");
        }
    }
    let _ = write!(
        b,
        "</h2><div class=panel><img class=chart id=site-chart alt=\"PM {eid}\" \
         src=\"/charts/sites/{eid}.svg?from={from}&amp;to={to}&amp;lang={lang}\" width=900 height=360></div>\
         <p class=muted>{note} PNG: <a href=\"/charts/sites/{eid}.png?from={from}&amp;to={to}&amp;lang={lang}\">chart.png</a>. \
         {csv}: <a href=\"/api/sites/{eid}/series.csv?metric=pm25&amp;from={from}&amp;to={to}&amp;lang={lang}\">PM2.5</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=pm10&amp;from={from}&amp;to={to}&amp;lang={lang}\">PM10</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=tsp&amp;from={from}&amp;to={to}&amp;lang={lang}\">TSP</a> \
         <a href=\"/api/sites/{eid}/series.csv?metric=noise_dba&amp;from={from}&amp;to={to}&amp;lang={lang}\">{noise}</a></p>\
         <div class=panel><img class=chart alt=\"AQI {eid}\" src=\"/charts/aqi/{eid}.svg?lang={lang}\" width=560 height=240></div>",
        note = t.chart_note,
        csv = t.csv_1min,
        noise = t.noise,
        lang = ui.lang.code(),
    );

    let _ = write!(
        b,
        "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class=hide-s>{}</th><th class=hide-s>{}</th><th>{}</th></tr></thead><tbody>",
        t.devices, t.device, t.state, t.firmware, t.boot, t.interval, t.last_seen
    );
    for d in state.reader.devices(Some(id))? {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n hide-s\">{}</td><td class=\"n hide-s\">{}</td><td>{}</td></tr>",
            escape(&d.device),
            escape(d.state.as_deref().unwrap_or("—")),
            escape(d.fw.as_deref().unwrap_or("—")),
            d.boot.map_or("—".into(), |x| x.to_string()),
            d.interval_s.map_or("—".into(), |x| format!("{x} s")),
            ui.time(d.last_seen_ms),
        );
    }
    b.push_str("</tbody></table>");

    b.push_str(&super::commands::section(state, ui, id)?);
    let alerts = state.reader.alerts(&AlertFilter {
        site: Some(id.to_string()),
        limit: Some(200),
        ..Default::default()
    })?;
    let _ = write!(
        b,
        "<h2>{} <a class=muted href=\"/alerts?site={eid}&amp;state=all\">{}</a></h2>\
         <table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class=hide-s>{}</th><th class=hide-s>{}</th><th>{}</th></tr></thead><tbody>",
        t.alert_history, t.act_on_them, t.rule, t.severity, t.state, t.opened, t.cleared, t.closed, t.acknowledged
    );
    if alerts.is_empty() {
        let _ = write!(b, "<tr><td colspan=8 class=muted>{}</td></tr>", t.no_alerts);
    }
    for a in &alerts {
        let ack = if a.acknowledged {
            format!(
                "{} — {}",
                escape(a.ack_by.as_deref().unwrap_or("")),
                escape(a.ack_comment.as_deref().unwrap_or(""))
            )
        } else {
            t.no.into()
        };
        let _ = write!(
            b,
            "<tr><td class=n>{}</td><td>{}</td><td class=\"sev-{sev}\">{sev_word}</td><td>{}</td><td>{}</td><td class=hide-s>{}</td><td class=hide-s>{}</td><td>{ack}</td></tr>",
            a.id,
            escape(&ui.lang.rule(&a.rule)),
            escape(&ui.lang.alert_state(&a.state)),
            ui.time(Some(a.opened_ts)),
            ui.time(a.cleared_ts),
            ui.time(a.closed_ts),
            sev = escape(&a.severity),
            sev_word = escape(&ui.lang.severity(&a.severity)),
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
    set('status', dw.status(s.status)); set('pm25', s.pm25); set('pm10', s.pm10); set('tsp', s.tsp); set('noise', s.noise);
    set('age', s.age); set('aqi', s.aqi_text[document.documentElement.lang] || '');
    const st = card.querySelector('[data-f=status]'); if (st) st.className = 'st ' + s.status;
    const a = card.querySelector('[data-f=aqi]'); if (a) { a.style.background = s.aqi_colour; a.style.color = s.aqi_ink; }
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
    lang: Lang,
    Path(id): Path<String>,
    Query(q): Query<SiteQuery>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let range = q.range.unwrap_or_else(|| "24h".into());
    let (title, body) = blocking(move || {
        let body = render(&state, ui, &id, &range)?;
        let title = find_site(&state, &id)?.name;
        Ok((title, body))
    })
    .await?;
    Ok(layout::page(ui, &title, Nav::None, &body, SCRIPT))
}
