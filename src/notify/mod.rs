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
mod deliver;
pub mod format;
pub mod i18n;
pub mod send;

use crate::metrics::Metrics;
use crate::store::{StoreError, StoreReader};
use config::SMTP_TARGET;
use deliver::{now_ms, Sender, Target, Worker, FIRST_BACKOFF, POLL};
use dustwatch_protocol::time::DAY;
use send::{SmtpSender, WebhookSender};
use std::collections::HashMap;
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

/// The running notifier.
pub struct Notifier {
    pub thread: std::thread::JoinHandle<()>,
}

/// Start the notifier when any target is configured (`None` otherwise). Stops at `shutdown`.
pub fn start(
    config: &NotifyConfig,
    store: &crate::store::config::StoreConfig,
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
    let outbox = crate::store::open_notify_queue(store)?;
    let mut worker = Worker {
        outbox,
        targets,
        reader,
        sites: HashMap::new(),
        sites_read: None,
        tz,
        metrics,
        retry_max: Duration::from_secs(config.retry_max_s.max(1)),
        keep_ms: i64::from(config.keep_days) * DAY,
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
