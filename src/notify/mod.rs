//! Notifications: every alert change (opened, reactivated, escalated, cleared, closed,
//! acknowledged) goes to the webhooks and the email address the office configured, routed by
//! rule, severity and street, held through quiet hours unless critical.
//!
//! The alert writer puts each change in the outbox in the same transaction as the change
//! (`store::notify_outbox`). The notifier, on its own thread, routes new changes to delivery rows
//! (one per change and target, so never two messages for one change) and delivers each target's
//! rows oldest first; a failing receiver is retried with exponential backoff and its later
//! messages wait behind the failed one, so they arrive in order once it is back.

pub mod config;
pub mod format;
pub mod i18n;
pub mod send;

use crate::metrics::Metrics;
use crate::store::notify_outbox::{NotifyOutbox, OutboxRow};
use crate::store::{StoreError, StoreReader};
use config::{QuietHours, Route, SMTP_TARGET};
use format::Message;
use send::{Outcome, SmtpSender, WebhookSender};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use config::NotifyConfig;

#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("notifications: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the notifier thread: {0}")]
    Thread(std::io::Error),
}

/// How often the notifier looks for new changes and due deliveries.
const POLL: Duration = Duration::from_millis(200);
/// First pause after a failure; it doubles up to `retry_max_s`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

enum Sender {
    Webhook(Box<config::WebhookConfig>, Box<WebhookSender>),
    Smtp(Box<SmtpSender>, crate::web::i18n::Lang),
}

/// One configured receiver.
struct Target {
    name: String,
    route: Route,
    quiet: Option<QuietHours>,
    sender: Sender,
    /// No attempt before this (after failures), and the current pause.
    wait_until: Option<Instant>,
    backoff: Duration,
}

/// The running notifier.
pub struct Notifier {
    pub thread: std::thread::JoinHandle<()>,
}

/// Start the notifier when any target is configured (`None` otherwise). Stops at `shutdown`.
pub fn start(
    config: &NotifyConfig,
    data_dir: &Path,
    reader: Arc<dyn StoreReader>,
    tz: chrono_tz::Tz,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Option<Notifier>, NotifyError> {
    config.validate()?;
    if config.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for w in &config.webhook {
        targets.push(Target {
            name: w.name.clone(),
            route: w.route.clone(),
            quiet: config.quiet_of(w.quiet_hours.as_deref())?,
            sender: Sender::Webhook(Box::new(w.clone()), Box::new(WebhookSender::new(w)?)),
            wait_until: None,
            backoff: FIRST_BACKOFF,
        });
    }
    if let Some(s) = &config.smtp {
        targets.push(Target {
            name: SMTP_TARGET.to_string(),
            route: s.route.clone(),
            quiet: config.quiet_of(s.quiet_hours.as_deref())?,
            sender: Sender::Smtp(Box::new(SmtpSender::new(s)?), s.language),
            wait_until: None,
            backoff: FIRST_BACKOFF,
        });
    }
    let outbox = NotifyOutbox::open(data_dir)?;
    let mut worker = Worker {
        outbox,
        targets,
        reader,
        sites: HashMap::new(),
        sites_read: None,
        tz,
        metrics,
        retry_max: Duration::from_secs(config.retry_max_s.max(1)),
        keep_ms: i64::from(config.keep_days) * 86_400_000,
        dashboard_url: config.dashboard_url.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("notifier".into())
        .spawn(move || {
            let mut last_prune: Option<Instant> = None;
            while !shutdown.is_cancelled() {
                if let Err(e) = worker.route() {
                    tracing::warn!(error = %e, "could not route notifications");
                }
                worker.deliver(&shutdown);
                if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                    last_prune = Some(Instant::now());
                    if let Err(e) = worker.outbox.prune(now_ms() - worker.keep_ms) {
                        tracing::warn!(error = %e, "could not prune the notification outbox");
                    }
                }
                std::thread::sleep(POLL);
            }
            tracing::info!("notifier stopped");
        })
        .map_err(NotifyError::Thread)?;
    Ok(Some(Notifier { thread }))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Worker {
    outbox: NotifyOutbox,
    targets: Vec<Target>,
    reader: Arc<dyn StoreReader>,
    /// Site id → (name, street).
    sites: HashMap<String, (String, String)>,
    sites_read: Option<Instant>,
    tz: chrono_tz::Tz,
    metrics: Arc<Metrics>,
    retry_max: Duration,
    keep_ms: i64,
    dashboard_url: Option<String>,
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
    fn route(&mut self) -> Result<(), NotifyError> {
        loop {
            let rows = self.outbox.unrouted(500)?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(());
            };
            let mut routes: Vec<(i64, String, i64)> = Vec::new();
            for r in &rows {
                let (_, street) = self.site(&r.site);
                for t in &self.targets {
                    if !t.route.matches(&r.rule, &r.severity, &street) {
                        continue;
                    }
                    let due = match (&t.quiet, r.severity.as_str()) {
                        (_, "critical") | (None, _) => r.recorded_ms,
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
    fn deliver(&mut self, shutdown: &CancellationToken) {
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
