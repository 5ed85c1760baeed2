//! Live updates by server-sent events (`GET /events`): every connection gets a `sites` event with
//! the compact state of every site when any reading arrived, an `alerts` event when an alert
//! opened, changed or was acknowledged, and a `level` event when the city level changed. Changes
//! are coalesced to one check per `TICK`, so a burst of updates costs the page one repaint.

use super::html::num;
use super::overview::{open_alerts, status_name};
use super::sites::site_views;
use super::{AppState, WebError};
use crate::store::{AlertFilter, StoreReader};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// How often a connection looks for changes.
pub const TICK: Duration = Duration::from_millis(500);

/// One site as the pages need it.
#[derive(Debug, Serialize)]
pub struct SiteUpdate {
    pub id: String,
    pub status: String,
    pub pm25: String,
    pub pm10: String,
    pub tsp: String,
    pub noise: String,
    pub age: String,
    pub aqi_text: String,
    pub aqi_colour: &'static str,
    pub alerts: usize,
}

#[derive(Debug, Default)]
struct Seen {
    sites: u64,
    alerts: u64,
    level: Option<String>,
}

fn hash_of(h: impl Hash) -> u64 {
    let mut s = std::collections::hash_map::DefaultHasher::new();
    h.hash(&mut s);
    s.finish()
}

/// The events due since `seen` (blocking: reads the store).
fn changes(state: &AppState, seen: &mut Seen) -> Result<Vec<Event>, WebError> {
    let mut out = Vec::new();
    let hot = state.reader.hot().all();
    let mut keys: Vec<(&String, i64)> = hot.iter().map(|(k, l)| (k, l.reading.ts)).collect();
    keys.sort_unstable();
    let sites_sig = hash_of(&keys);
    let open = state.reader.alerts(&AlertFilter {
        state: Some("open".into()),
        ..Default::default()
    })?;
    let alerts_sig = hash_of(
        open.iter()
            .map(|a| (a.id, &a.state, a.acknowledged, a.updated_ts, &a.severity))
            .collect::<Vec<_>>(),
    );
    if sites_sig != seen.sites || alerts_sig != seen.alerts {
        seen.sites = sites_sig;
        let counts = open_alerts(state)?;
        let views = site_views(state)?;
        let now = hot.values().map(|l| l.reading.ts).max();
        let updates: Vec<SiteUpdate> = views
            .iter()
            .map(|v| {
                let l = v.latest.as_ref().map(|l| &l.reading);
                SiteUpdate {
                    id: v.info.id.clone(),
                    status: status_name(v),
                    pm25: num(l.and_then(|r| r.pm25)),
                    pm10: num(l.and_then(|r| r.pm10)),
                    tsp: num(l.and_then(|r| r.tsp)),
                    noise: num(l.and_then(|r| r.noise_dba)),
                    age: v.data_age_s.map_or("—".into(), |a| format!("{a} s")),
                    aqi_text: match (v.aqi, v.aqi_category) {
                        (Some(a), Some(c)) => format!("AQI {a} {}", c.name),
                        _ => "AQI —".into(),
                    },
                    aqi_colour: v.aqi_category.map_or("transparent", |c| c.colour),
                    alerts: counts.get(&v.info.id).copied().unwrap_or(0),
                }
            })
            .collect();
        let data = serde_json::json!({"now": now, "sites": updates});
        out.push(Event::default().event("sites").data(data.to_string()));
    }
    if alerts_sig != seen.alerts {
        seen.alerts = alerts_sig;
        out.push(
            Event::default()
                .event("alerts")
                .data(open.len().to_string()),
        );
    }
    let level = state
        .reader
        .city_levels()?
        .last()
        .map_or("none", |l| l.level.name())
        .to_string();
    if seen.level.as_deref() != Some(level.as_str()) {
        out.push(Event::default().event("level").data(level.clone()));
        seen.level = Some(level);
    }
    Ok(out)
}

pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let init = (state, interval, Seen::default(), Vec::<Event>::new());
    let stream =
        futures_util::stream::unfold(init, |(state, mut interval, seen, mut queue)| async move {
            let mut seen = seen;
            loop {
                if let Some(e) = queue.pop() {
                    return Some((Ok(e), (state, interval, seen, queue)));
                }
                interval.tick().await;
                let st = state.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let r = changes(&st, &mut seen);
                    (r, seen)
                })
                .await;
                match result {
                    Ok((Ok(mut events), s)) => {
                        seen = s;
                        events.reverse();
                        queue = events;
                    }
                    Ok((Err(e), s)) => {
                        seen = s;
                        tracing::warn!(error = %e, "live update failed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live update task failed");
                        return None;
                    }
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The client side: one EventSource, handlers a page may set (`live.onSites`, `live.onAlerts`,
/// `live.onLevel`); the header shows the connection state and the city level.
pub const CLIENT: &str = r#"
const live = { onSites: null, onAlerts: null, onLevel: null, updates: 0 };
(function () {
  const badge = document.getElementById('live');
  const es = new EventSource('/events');
  es.onopen = () => { badge.textContent = '● live'; };
  es.onerror = () => { badge.textContent = '○ reconnecting'; };
  es.addEventListener('sites', (ev) => {
    const d = JSON.parse(ev.data); live.updates++;
    if (d.now) window.dwNow = d.now;
    badge.textContent = '● live ' + (d.now ? dw.time(d.now) : '');
    if (live.onSites) live.onSites(d.sites);
  });
  es.addEventListener('alerts', (ev) => { if (live.onAlerts) live.onAlerts(Number(ev.data)); });
  es.addEventListener('level', (ev) => {
    const h = document.getElementById('city-level'); h.textContent = 'city: ' + ev.data; h.className = 'level ' + ev.data;
    if (live.onLevel) live.onLevel(ev.data);
  });
})();
"#;
