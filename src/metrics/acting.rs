//! Counters of what the office does to the field: device commands and notifications.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Device commands and notifications (`dustwatch_commands_*`, `dustwatch_notify_*`).
#[derive(Debug, Default)]
pub struct ActingMetrics {
    /// Commands published to devices.
    pub commands_sent: AtomicU64,
    /// Commands that could not be published (queue full).
    pub commands_not_sent: AtomicU64,
    /// Commands with no answer before their deadline.
    pub commands_timed_out: AtomicU64,
    /// Alert changes routed to their targets.
    pub notify_routed: AtomicU64,
    /// Messages a receiver accepted.
    pub notify_delivered: AtomicU64,
    /// Attempts that failed and will be retried.
    pub notify_failures: AtomicU64,
    /// Messages a receiver refused for good (kept in the store, not retried).
    pub notify_refused: AtomicU64,
    /// Deliveries waiting (receiver away, backing off, or held by quiet hours).
    pub notify_backlog: AtomicI64,
}

impl ActingMetrics {
    pub(super) fn render(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 7] = [
            (
                "dustwatch_commands_sent_total",
                "Commands published to devices.",
                &self.commands_sent,
            ),
            (
                "dustwatch_commands_not_sent_total",
                "Commands not published (publish queue full).",
                &self.commands_not_sent,
            ),
            (
                "dustwatch_commands_timed_out_total",
                "Commands unanswered before their deadline.",
                &self.commands_timed_out,
            ),
            (
                "dustwatch_notify_routed_total",
                "Alert changes routed to notification targets.",
                &self.notify_routed,
            ),
            (
                "dustwatch_notify_delivered_total",
                "Notifications a receiver accepted.",
                &self.notify_delivered,
            ),
            (
                "dustwatch_notify_failures_total",
                "Notification attempts that failed and will be retried.",
                &self.notify_failures,
            ),
            (
                "dustwatch_notify_refused_total",
                "Notifications a receiver refused for good (not retried).",
                &self.notify_refused,
            ),
        ];
        super::write_counters(out, &counters);
        let _ = writeln!(
            out,
            "# HELP dustwatch_notify_backlog Notifications waiting for delivery.\n\
             # TYPE dustwatch_notify_backlog gauge\ndustwatch_notify_backlog {}",
            self.notify_backlog.load(Relaxed)
        );
    }
}
