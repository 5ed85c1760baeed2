//! The city's warning-level feed: the scenario's level timeline published retained on
//! `dust/v1/city/level` at the right simulated times, as the office's feed would.

use crate::net::{Connection, NetEvent};
use crate::Shared;
use dustwatch_protocol::{CityLevel, EventTime, Level};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The level changes to publish: the one in force at the start, then each later change.
pub fn timeline(levels: &[(i64, Level)], start: i64, end: Option<i64>) -> Vec<CityLevel> {
    let first = levels
        .iter()
        .rev()
        .find(|(t, _)| *t <= start)
        .map(|(t, l)| CityLevel {
            level: *l,
            ts: EventTime(*t),
        })
        .unwrap_or(CityLevel {
            level: Level::None,
            ts: EventTime(start),
        });
    let mut out = vec![first];
    out.extend(
        levels
            .iter()
            .filter(|(t, _)| *t > start && end.is_none_or(|e| *t < e))
            .map(|(t, l)| CityLevel {
                level: *l,
                ts: EventTime(*t),
            }),
    );
    out
}

/// Publish the timeline; returns once every change in the span is acknowledged.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let plan = &shared.plan;
    let topic = shared.root.city_level();
    let items = timeline(&plan.levels, plan.begin_ms, plan.end_ms);
    let client_id = format!("{}-city", shared.client_prefix);
    let mut backoff = shared.backoff_min;
    let mut next = 0;
    let me = shared.progress.len();
    // Whatever ends this task, it no longer holds the fleet back.
    let _done = Finished(&shared, me);
    while next < items.len() {
        let item = items[next];
        // Due when the simulated clock reaches it, or at --speed max when every device has
        // produced its readings before it (the feed is a participant of the lockstep: no device
        // goes past the change until it is out).
        if shared.clock.is_max() {
            shared.lockstep.announce(me, item.ts.ms());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = shared.lockstep.wait(me, item.ts.ms()) => {}
            }
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = shared.clock.sleep_until(item.ts.ms()) => {}
            }
        }
        let payload = serde_json::to_vec(&item).unwrap_or_default();
        let mut conn = Connection::open_as(
            &shared.endpoint,
            &client_id,
            shared.endpoint.office_login(),
            None,
        );
        let mut acked = false;
        while !acked {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = conn.recv() => ev,
            };
            match ev {
                Some(NetEvent::Connected) => {
                    conn.publish(topic.as_str(), true, &payload);
                }
                Some(NetEvent::Acked(_)) => acked = true,
                Some(NetEvent::Lost(_)) | None => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(shared.backoff_max);
                    conn = Connection::open_as(
                        &shared.endpoint,
                        &client_id,
                        shared.endpoint.office_login(),
                        None,
                    );
                }
                Some(_) => {}
            }
        }
        conn.disconnect();
        // Let the DISCONNECT go out; the retained level is already acknowledged.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.recv()).await;
        backoff = shared.backoff_min;
        shared.stats.city_levels.fetch_add(1, Ordering::Relaxed);
        tracing::info!(level = %item.level, ts = item.ts.ms(), "city level published");
        next += 1;
    }
}

/// Leaves the lockstep when dropped.
struct Finished<'a>(&'a Shared, usize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.lockstep.announce(self.1, i64::MAX);
    }
}
