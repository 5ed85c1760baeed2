//! Delivery: route each new alert change to its targets (one delivery row per change and
//! target, due at once or when the target's quiet hours end), then send each target's due rows
//! oldest first, with exponential backoff while a receiver fails.

use super::config::{QuietHours, Route};
use super::format::Message;
use super::send::{Outcome, SmtpSender, WebhookSender};
use super::NotifyError;
use crate::metrics::Metrics;
use crate::store::notify_outbox::{NotifyQueue, OutboxRow};
use crate::store::StoreReader;
use dustwatch_protocol::Severity;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the notifier looks for new changes and due deliveries.
pub(super) const POLL: Duration = Duration::from_millis(200);
/// First pause after a failure; it doubles up to `retry_max_s`.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How a target is reached.
pub(super) enum Sender {
    Webhook(Box<super::config::WebhookConfig>, Box<WebhookSender>),
    Smtp(Box<SmtpSender>, crate::web::i18n::Lang),
}

/// One configured receiver.
pub(super) struct Target {
    pub(super) name: String,
    pub(super) route: Route,
    pub(super) quiet: Option<QuietHours>,
    pub(super) sender: Sender,
    /// No attempt before this (after failures), and the current pause.
    pub(super) wait_until: Option<Instant>,
    pub(super) backoff: Duration,
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) struct Worker {
    pub(super) outbox: Box<dyn NotifyQueue>,
    pub(super) targets: Vec<Target>,
    pub(super) reader: Arc<dyn StoreReader>,
    /// Site id → (name, street).
    pub(super) sites: HashMap<String, (String, String)>,
    pub(super) sites_read: Option<Instant>,
    pub(super) tz: chrono_tz::Tz,
    pub(super) metrics: Arc<Metrics>,
    pub(super) retry_max: Duration,
    pub(super) keep_ms: i64,
    pub(super) dashboard_url: Option<String>,
}

impl Worker {
    fn site(&mut self, id: &str) -> (String, String) {
        let stale = self
            .sites_read
            .is_none_or(|t| t.elapsed() > Duration::from_secs(60));
        if stale || !self.sites.contains_key(id) {
            match self.reader.sites() {
                Ok(sites) => {
                    self.sites = sites
                        .into_iter()
                        .map(|s| (s.info.id, (s.info.name, s.info.street)))
                        .collect();
                    self.sites_read = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "could not read the sites for notifications"),
            }
        }
        self.sites
            .get(id)
            .cloned()
            .unwrap_or_else(|| (id.to_string(), String::new()))
    }

    /// Give every new change its delivery rows.
    pub(super) fn route(&mut self) -> Result<(), NotifyError> {
        loop {
            let rows = self.outbox.unrouted(500)?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(());
            };
            let mut routes: Vec<(i64, String, i64)> = Vec::new();
            for r in &rows {
                let (_, street) = self.site(&r.site);
                for t in &self.targets {
                    if !t.route.matches(&r.rule, r.severity.name(), &street) {
                        continue;
                    }
                    let due = match (&t.quiet, r.severity) {
                        (_, Severity::Critical) | (None, _) => r.recorded_ms,
                        (Some(q), _) => q.release_at(r.recorded_ms, self.tz),
                    };
                    routes.push((r.id, t.name.clone(), due));
                }
            }
            let refs: Vec<(i64, &str, i64)> = routes
                .iter()
                .map(|(i, n, d)| (*i, n.as_str(), *d))
                .collect();
            self.outbox.route(last, &refs)?;
            self.metrics
                .acting
                .notify_routed
                .fetch_add(routes.len() as u64, Relaxed);
        }
    }

    /// Deliver what is due, target by target, oldest first.
    pub(super) fn deliver(&mut self, shutdown: &CancellationToken) {
        for i in 0..self.targets.len() {
            if self.targets[i]
                .wait_until
                .is_some_and(|t| Instant::now() < t)
            {
                continue;
            }
            // A bounded number per pass, so one busy target does not starve routing.
            for _ in 0..100 {
                if shutdown.is_cancelled() {
                    return;
                }
                let now = now_ms();
                let name = self.targets[i].name.clone();
                let due = match self.outbox.next_due(&name, now) {
                    Ok(Some(d)) => d,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, target = %name, "could not read due notifications");
                        break;
                    }
                };
                let outcome = self.attempt(i, &due.row, now);
                let t = &mut self.targets[i];
                let recorded = match &outcome {
                    Outcome::Delivered => {
                        t.backoff = FIRST_BACKOFF;
                        t.wait_until = None;
                        self.metrics.acting.notify_delivered.fetch_add(1, Relaxed);
                        self.outbox.delivered(due.row.id, &name, now_ms())
                    }
                    Outcome::Refused(why) => {
                        tracing::error!(target = %name, change = due.row.id, error = %why, "receiver refused a notification; not retried");
                        self.metrics.acting.notify_refused.fetch_add(1, Relaxed);
                        self.outbox.refused(due.row.id, &name, why, now_ms())
                    }
                    Outcome::Retry(why) => {
                        tracing::warn!(target = %name, change = due.row.id, attempts = due.attempts + 1, retry_in_s = t.backoff.as_secs(), error = %why, "notification failed; will retry");
                        self.metrics.acting.notify_failures.fetch_add(1, Relaxed);
                        t.wait_until = Some(Instant::now() + t.backoff);
                        t.backoff = (t.backoff * 2).min(self.retry_max);
                        self.outbox.failed(due.row.id, &name, why)
                    }
                };
                if let Err(e) = recorded {
                    // Not recorded as delivered: it goes again (at least once beats never).
                    tracing::warn!(error = %e, target = %name, "could not record a delivery");
                    break;
                }
                if matches!(outcome, Outcome::Retry(_)) {
                    break;
                }
            }
        }
        match self.outbox.backlog() {
            Ok(n) => self.metrics.acting.notify_backlog.store(n, Relaxed),
            Err(e) => tracing::debug!(error = %e, "backlog unknown"),
        }
    }

    fn attempt(&mut self, i: usize, row: &OutboxRow, now: i64) -> Outcome {
        let (site_name, street) = self.site(&row.site);
        let lang = match &self.targets[i].sender {
            Sender::Webhook(w, _) => w.language,
            Sender::Smtp(_, lang) => *lang,
        };
        let message = Message {
            row,
            site_name: &site_name,
            street: &street,
            tz: self.tz,
            lang,
            dashboard_url: self.dashboard_url.as_deref(),
        };
        match &self.targets[i].sender {
            Sender::Webhook(w, sender) => sender.send(w, &message, now),
            Sender::Smtp(s, _) => s.send(&message),
        }
    }
}
