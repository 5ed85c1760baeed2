//! Live updates by server-sent events (`GET /events`): every connection gets a `sites` event with
//! the compact state of every site when any reading arrived, an `alerts` event when an alert
//! opened, changed or was acknowledged, and a `level` event when the city level changed. Changes
//! are coalesced to one check per `TICK`, so a burst of updates costs the page one repaint.
//!
//! One hub computes each update once and hands it to every stream through a `watch` channel (the
//! latest state, not a queue: a slow stream skips to the newest update instead of lagging, and a
//! new stream starts from the current state). The hub reads the store only while a stream is
//! open; at most `max_streams` are open at once (more get 503).

use super::html::num;
use super::i18n::Lang;
use super::overview::{aqi_badge, open_alerts};
use super::sites::site_views;
use super::sites::status_name;
use super::{AppState, WebError};
use crate::store::{AlertFilter, StateFilter};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How often the hub looks for changes (while a stream is open).
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
    /// The AQI badge per page language (`zh-CN`, `en`): one hub serves every page.
    pub aqi_text: std::collections::BTreeMap<&'static str, String>,
    pub aqi: Option<u32>,
    pub aqi_colour: &'static str,
    /// The badge's text colour (black or white, whichever reads on `aqi_colour`).
    pub aqi_ink: &'static str,
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

/// What changed since `seen`: the data of each event due.
#[derive(Debug, Default)]
struct Changes {
    sites: Option<String>,
    alerts: Option<String>,
    level: Option<String>,
}

/// The latest state every stream follows; a version per event kind (0: none yet).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    sites: (u64, Arc<str>),
    alerts: (u64, Arc<str>),
    level: (u64, Arc<str>),
}

/// The events due since `seen` (blocking: reads the store).
fn changes(state: &AppState, seen: &mut Seen) -> Result<Changes, WebError> {
    let mut out = Changes::default();
    let hot = state.reader.hot().all();
    let mut keys: Vec<(&String, i64)> = hot.iter().map(|(k, l)| (k, l.reading.ts.ms())).collect();
    keys.sort_unstable();
    let sites_sig = hash_of(&keys);
    let open = state.reader.alerts(&AlertFilter {
        state: Some(StateFilter::Open),
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
                    aqi_text: Lang::ALL
                        .iter()
                        .map(|l| (l.code(), aqi_badge(*l, v).0))
                        .collect(),
                    aqi: v.aqi,
                    aqi_colour: aqi_badge(Lang::default(), v).1,
                    aqi_ink: aqi_badge(Lang::default(), v).2,
                    alerts: counts.get(&v.info.id).copied().unwrap_or(0),
                }
            })
            .collect();
        let data = serde_json::json!({"now": now, "sites": updates});
        out.sites = Some(data.to_string());
    }
    if alerts_sig != seen.alerts {
        seen.alerts = alerts_sig;
        out.alerts = Some(open.len().to_string());
    }
    // "<level> <since, Unix ms>": the pages show both, and a new level always has a new since.
    let level = state.reader.city_levels()?.last().map_or_else(
        || "none".to_string(),
        |l| format!("{} {}", l.level.name(), l.ts.ms()),
    );
    if seen.level.as_deref() != Some(level.as_str()) {
        out.level = Some(level.clone());
        seen.level = Some(level);
    }
    Ok(out)
}

/// The live hub: one task computing updates, streams following its snapshot.
#[derive(Clone)]
pub struct LiveHub {
    updates: watch::Receiver<Snapshot>,
    streams: Arc<Semaphore>,
    max_streams: usize,
}

impl LiveHub {
    /// Start the hub's task; it stops (ending every stream) when `shutdown` is cancelled.
    pub fn start(state: HubState, max_streams: usize, shutdown: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(Snapshot::default());
        tokio::spawn(run(state, tx, shutdown));
        LiveHub {
            updates: rx,
            streams: Arc::new(Semaphore::new(max_streams)),
            max_streams,
        }
    }

    /// Streams open now.
    pub fn streams_open(&self) -> usize {
        self.max_streams
            .saturating_sub(self.streams.available_permits())
    }
}

/// What the hub's task needs to compute updates: the handler state, given once the router's
/// state exists (the state holds the hub, so it cannot be passed at start).
pub type HubState = tokio::sync::oneshot::Receiver<AppState>;

async fn run(state: HubState, tx: watch::Sender<Snapshot>, shutdown: CancellationToken) {
    let state = tokio::select! {
        _ = shutdown.cancelled() => return,
        s = state => match s {
            Ok(s) => s,
            Err(_) => return,
        },
    };
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = Seen::default();
    let mut version = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if state.live.streams_open() == 0 {
            // Nobody watches: no store reads. Start afresh for the next stream.
            seen = Seen::default();
            continue;
        }
        let st = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = changes(&st, &mut seen);
            (r, seen)
        })
        .await;
        let changes = match result {
            Ok((r, s)) => {
                seen = s;
                match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "live update failed");
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "live update task failed");
                seen = Seen::default();
                continue;
            }
        };
        state.metrics.http.live_updates.fetch_add(1, Relaxed);
        if changes.sites.is_none() && changes.alerts.is_none() && changes.level.is_none() {
            continue;
        }
        version += 1;
        tx.send_modify(|snap| {
            if let Some(d) = changes.sites {
                snap.sites = (version, d.into());
            }
            if let Some(d) = changes.alerts {
                snap.alerts = (version, d.into());
            }
            if let Some(d) = changes.level {
                snap.level = (version, d.into());
            }
        });
    }
}

/// One stream's position: the versions it has sent.
struct Follower {
    updates: watch::Receiver<Snapshot>,
    sent: (u64, u64, u64),
    queue: Vec<Event>,
    _permit: OwnedSemaphorePermit,
    _open: OpenStream,
}

/// Counts an open stream in the metrics while it lives.
struct OpenStream(Arc<crate::metrics::Metrics>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.http.live_streams.fetch_sub(1, Relaxed);
    }
}

impl Follower {
    /// Queue the events of everything newer than what was sent.
    fn catch_up(&mut self) {
        let snap = self.updates.borrow_and_update().clone();
        // Sent in this order: sites, alerts, level (the queue pops from the back).
        let mut due = Vec::new();
        if snap.sites.0 > self.sent.0 {
            self.sent.0 = snap.sites.0;
            due.push(Event::default().event("sites").data(&*snap.sites.1));
        }
        if snap.alerts.0 > self.sent.1 {
            self.sent.1 = snap.alerts.0;
            due.push(Event::default().event("alerts").data(&*snap.alerts.1));
        }
        if snap.level.0 > self.sent.2 {
            self.sent.2 = snap.level.0;
            due.push(Event::default().event("level").data(&*snap.level.1));
        }
        due.reverse();
        self.queue = due;
    }
}

pub async fn events(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let hub = &state.live;
    let Ok(permit) = hub.streams.clone().try_acquire_owned() else {
        state
            .metrics
            .http
            .live_streams_refused
            .fetch_add(1, Relaxed);
        return Err(WebError::Unavailable(format!(
            "{} live streams are open, the most this server keeps; try again later",
            hub.max_streams
        )));
    };
    state.metrics.http.live_streams.fetch_add(1, Relaxed);
    let mut follower = Follower {
        updates: hub.updates.clone(),
        sent: (0, 0, 0),
        queue: Vec::new(),
        _permit: permit,
        _open: OpenStream(state.metrics.clone()),
    };
    follower.catch_up();
    let stream = futures_util::stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(e) = f.queue.pop() {
                return Some((Ok(e), f));
            }
            // Ends when the hub stops (shutdown).
            f.updates.changed().await.ok()?;
            f.catch_up();
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
