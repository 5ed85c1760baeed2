//! The overview, the office's wall screen: the city level in force and since when, counts of
//! violations, warnings, offline and not-judged sites, the district map, and every site as a
//! card, worst first (status, then open alerts, then AQI). Server-rendered, then kept current by
//! the `/events` stream (`live.rs`) without reloading.

use super::html::{escape, ink, num};
use super::i18n::Lang;
use super::layout::{self, Nav, Ui};
use super::sites::{site_views, SiteStatus, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, StoreReader};
use axum::extract::State;
use axum::response::Response;
use dustwatch_protocol::SiteKind;
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

/// How urgently the office should look at a status: lower first.
fn urgency(s: SiteStatus) -> u8 {
    match s {
        SiteStatus::Violation => 0,
        SiteStatus::Warning => 1,
        SiteStatus::Offline => 2,
        SiteStatus::Unregistered => 3,
        SiteStatus::Ok => 4,
    }
}

/// Sites in the order the office should look at them.
pub fn worst_first(views: &mut [SiteView], alerts: &HashMap<String, usize>) {
    views.sort_by(|a, b| {
        urgency(a.status)
            .cmp(&urgency(b.status))
            .then_with(|| alerts.get(&b.info.id).cmp(&alerts.get(&a.info.id)))
            .then_with(|| b.aqi.cmp(&a.aqi))
            .then_with(|| a.info.id.cmp(&b.info.id))
    });
}

/// The AQI badge text and colours in the page's language.
pub fn aqi_badge(lang: Lang, v: &SiteView) -> (String, &'static str, &'static str) {
    match (v.aqi, v.aqi_category) {
        (Some(a), Some(c)) => (
            format!("AQI {a} {}", lang.aqi_category(&c)),
            c.colour,
            ink(c.colour),
        ),
        _ => ("AQI —".to_string(), "#ffffff", "#000"),
    }
}

fn card(ui: Ui, v: &SiteView, alerts: usize) -> String {
    let t = ui.t();
    let l = v.latest.as_ref().map(|l| &l.reading);
    let status = status_name(v);
    let (aqi_text, aqi_bg, aqi_fg) = aqi_badge(ui.lang, v);
    format!(
        "<div class=\"card {status}\" data-site=\"{id}\"><a href=\"/sites/{id}\">\
         <div class=name>{name}</div><div class=sub>{street} · {kind} · {id} · \
         <span class=\"st {status}\" data-f=status>{status_word}</span></div>\
         <div class=vals><div><b data-f=pm25>{pm25}</b><span>PM2.5</span></div>\
         <div><b data-f=pm10>{pm10}</b><span>PM10</span></div>\
         <div><b data-f=tsp>{tsp}</b><span>TSP</span></div>\
         <div><b data-f=noise>{noise}</b><span>dB(A)</span></div></div>\
         <span class=aqi data-f=aqi style=\"background:{aqi_bg};color:{aqi_fg}\">{aqi_text}</span> \
         <span class=sub>{age_word} <span data-f=age>{age}</span></span> \
         <span class=\"badge{none}\" data-f=alerts>{alerts} {open}</span></a></div>",
        id = escape(&v.info.id),
        name = escape(&v.info.name),
        street = escape(&v.info.street),
        kind = ui.lang.kind(v.info.kind.name()),
        status_word = ui.lang.status(&status),
        pm25 = num(l.and_then(|r| r.pm25)),
        pm10 = num(l.and_then(|r| r.pm10)),
        tsp = num(l.and_then(|r| r.tsp)),
        noise = num(l.and_then(|r| r.noise_dba)),
        age_word = t.age,
        age = v.data_age_s.map_or("—".to_string(), |a| format!("{a} s")),
        none = if alerts == 0 { " none" } else { "" },
        open = t.open_suffix,
    )
}

/// Today's street ranking (local day of the fleet clock): the five streets with the most
/// exceedance minutes, linked to the full rankings.
fn street_ranking(state: &AppState, ui: Ui, now: Option<i64>) -> Result<String, WebError> {
    let t = ui.t();
    let today = chrono::DateTime::from_timestamp_millis(
        now.unwrap_or_else(|| super::charts::fleet_now(state)),
    )
    .unwrap_or_default()
    .with_timezone(&ui.tz)
    .date_naive();
    let r = crate::report::rankings(state.reader.as_ref(), today, today, ui.tz)?;
    let mut b = format!(
        "<h2>{} <span class=muted>{today}</span> <a class=muted href=\"/rankings?period=day\">{}</a></h2>\
         <table id=street-ranking><thead><tr><th class=n>{}</th><th>{}</th><th class=n>{}</th><th class=n>{}</th></tr></thead><tbody>",
        t.rank_streets, t.nav_rankings, t.rank, t.street, t.exceedance_min, t.alerts_opened
    );
    for s in r.streets.iter().take(5) {
        let _ = write!(
            b,
            "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            s.rank,
            escape(&s.street),
            s.exceedance_minutes,
            s.alerts
        );
    }
    b.push_str("</tbody></table>");
    Ok(b)
}

/// The body of the overview (also measured by the benchmark).
pub fn render(state: &AppState, ui: Ui) -> Result<String, WebError> {
    let t = ui.t();
    let mut views = site_views(state)?;
    let alerts = open_alerts(state)?;
    worst_first(&mut views, &alerts);
    let now = state.reader.hot().fleet_clock();
    let levels = state.reader.city_levels()?;
    let in_force = levels
        .iter()
        .rev()
        .find(|l| now.is_none_or(|n| l.ts <= n))
        .copied();
    let level = in_force.map_or(dustwatch_protocol::Level::None, |l| l.level);
    // Live updates rewrite the time when the level changes.
    let since = format!(
        " <span class=muted>{} <span id=level-since>{}</span></span>",
        t.level_since,
        in_force.map_or_else(|| "—".to_string(), |l| ui.time(Some(l.ts)))
    );
    let count = |f: &dyn Fn(&SiteView) -> bool| views.iter().filter(|v| f(v)).count();
    let counts = [
        (
            "violation",
            t.st_violation,
            count(&|v| v.status == SiteStatus::Violation),
        ),
        (
            "warning",
            t.st_warning,
            count(&|v| v.status == SiteStatus::Warning),
        ),
        (
            "offline",
            t.st_offline,
            count(&|v| v.status == SiteStatus::Offline),
        ),
        (
            "not-judged",
            t.not_judged,
            // Rules judge registered construction and road sites; reference points and
            // unregistered ids are shown but never judged.
            count(&|v| v.status == SiteStatus::Unregistered || v.info.kind == SiteKind::Reference),
        ),
        ("ok", t.st_ok, count(&|v| v.status == SiteStatus::Ok)),
    ];
    let mut summary = String::new();
    for (class, word, n) in counts {
        let _ = write!(
            summary,
            "<div class=\"count-{class}\"><b>{n}</b>{word}</div>"
        );
    }
    let mut cards = String::with_capacity(views.len() * 800);
    for v in &views {
        cards.push_str(&card(ui, v, alerts.get(&v.info.id).copied().unwrap_or(0)));
    }
    let options: String = dustwatch_protocol::Level::ALL
        .iter()
        .map(|l| {
            let sel = if *l == level { " selected" } else { "" };
            format!(
                "<option value={}{sel}>{}</option>",
                l.name(),
                ui.lang.level(*l)
            )
        })
        .collect();
    let body = format!(
        "<h1>{city_level}: <span class=\"level bigLevel {lname}\" id=level-now>{lword}</span>{since}</h1>\
         <div class=counts id=counts>{summary}<div><b>{n}</b>{sites_n}</div></div>\
         <div class=wall><section><h2>{sites} <span class=muted>{worst}</span></h2>\
         <div class=grid id=sites>{cards}</div></section>\
         <section><h2>{map_title} <span class=muted>{map_note}</span></h2>{map}{ranking}</section></div>\
         <h2>{city_level}</h2>\
         <form class=inline id=level-form><select name=level>{options}</select>\
         <input name=token type=password placeholder=\"{token}\" autocomplete=off>\
         <button type=submit>{set}</button><span class=msg id=level-msg></span></form>",
        city_level = t.city_level,
        lname = level.name(),
        lword = ui.lang.level(level),
        n = views.len(),
        sites_n = t.sites_n,
        sites = t.sites,
        worst = t.worst_first,
        map_title = t.map,
        map_note = t.map_note,
        map = super::map::render(ui, &views),
        ranking = street_ranking(state, ui, now)?,
        token = t.write_token,
        set = t.level_set,
    );
    Ok(body + &super::acting::patrol::overview_section(state, ui)?)
}

const SCRIPT: &str = r#"
document.getElementById('level-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target, msg = document.getElementById('level-msg');
  const body = { level: f.level.value };
  if (window.dwNow) body.ts = window.dwNow;
  try { const r = await dw.call('PUT', '/api/city/level', body); msg.textContent = dw.words.set_to + ' ' + dw.level(r.level); }
  catch (e) { msg.textContent = e.message; }
});
const dotColour = { ok: '#2e7d32', warning: '#f9a825', violation: '#c62828', unregistered: '#6a1b9a' };
live.onSites = (sites) => {
  for (const s of sites) {
    const card = document.querySelector('.card[data-site="' + CSS.escape(s.id) + '"]');
    const dot = document.querySelector('circle[data-site="' + CSS.escape(s.id) + '"]');
    if (dot) dot.setAttribute('fill', dotColour[s.status] || '#9e9e9e');
    if (!card) continue;
    card.className = 'card ' + s.status;
    const set = (f, v) => { const e = card.querySelector('[data-f=' + f + ']'); if (e) e.textContent = v; };
    set('status', dw.status(s.status)); set('pm25', s.pm25); set('pm10', s.pm10); set('tsp', s.tsp); set('noise', s.noise);
    set('age', s.age); set('aqi', s.aqi_text[document.documentElement.lang] || ''); set('alerts', s.alerts + ' ' + dw.words.open);
    const st = card.querySelector('[data-f=status]'); if (st) st.className = 'st ' + s.status;
    const a = card.querySelector('[data-f=aqi]'); if (a) { a.style.background = s.aqi_colour; a.style.color = s.aqi_ink; }
    const b = card.querySelector('[data-f=alerts]'); if (b) b.className = 'badge' + (s.alerts ? '' : ' none');
  }
};
// Keep the counts and the worst-first order as statuses change.
const urgency = ['violation', 'warning', 'offline', 'unregistered', 'ok'];
const relist = (sites) => {
  const n = {}; for (const s of sites) n[s.status] = (n[s.status] || 0) + 1;
  for (const k of ['violation', 'warning', 'offline', 'ok']) { const e = document.querySelector('.count-' + k + ' b'); if (e) e.textContent = n[k] || 0; }
  const rank = (s) => [urgency.indexOf(s.status), -s.alerts, -(s.aqi || 0), s.id];
  const sorted = [...sites].sort((a, b) => { const x = rank(a), y = rank(b); for (let i = 0; i < 4; i++) { if (x[i] < y[i]) return -1; if (x[i] > y[i]) return 1; } return 0; });
  const grid = document.getElementById('sites');
  for (const s of sorted) { const c = grid.querySelector('.card[data-site="' + CSS.escape(s.id) + '"]'); if (c) grid.appendChild(c); }
};
const onSitesCards = live.onSites;
live.onSites = (sites) => { onSitesCards(sites); relist(sites); };
live.onLevel = (l, since) => { const e = document.getElementById('level-now'); e.textContent = dw.level(l); e.className = 'level bigLevel ' + l; const s = document.getElementById('level-since'); if (s && since) s.textContent = dw.time(since); };
"#;

pub async fn page(State(state): State<AppState>, lang: Lang) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let body = blocking(move || render(&state, ui)).await?;
    Ok(layout::page(
        ui,
        ui.t().nav_overview,
        Nav::Overview,
        &body,
        SCRIPT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::SiteInfo;

    fn view(id: &str, status: SiteStatus, aqi: Option<u32>) -> SiteView {
        SiteView {
            info: SiteInfo {
                id: id.into(),
                name: id.into(),
                street: "s".into(),
                kind: SiteKind::Construction,
                phase: Default::default(),
                lat: None,
                lon: None,
                reference: None,
            },
            registered: true,
            status,
            latest: None,
            aqi,
            aqi_category: aqi.map(crate::aqi::category),
            data_age_s: None,
            open_alerts: 0,
        }
    }

    #[test]
    fn violations_come_first_then_warnings_then_offline_then_the_rest() {
        let mut v = vec![
            view("a-ok-dusty", SiteStatus::Ok, Some(300)),
            view("b-offline", SiteStatus::Offline, None),
            view("c-warning-1", SiteStatus::Warning, Some(80)),
            view("d-violation", SiteStatus::Violation, Some(90)),
            view("e-warning-3", SiteStatus::Warning, Some(60)),
            view("f-ok-clean", SiteStatus::Ok, Some(20)),
        ];
        let alerts = HashMap::from([
            ("c-warning-1".to_string(), 1),
            ("e-warning-3".to_string(), 3),
        ]);
        worst_first(&mut v, &alerts);
        let order: Vec<&str> = v.iter().map(|v| v.info.id.as_str()).collect();
        assert_eq!(
            order,
            [
                "d-violation",
                "e-warning-3",
                "c-warning-1",
                "b-offline",
                "a-ok-dusty",
                "f-ok-clean"
            ]
        );
    }
}
