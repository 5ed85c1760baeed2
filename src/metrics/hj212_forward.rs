//! HJ 212 forwarding counters, one set per `[[hj212.forward]]` target (the label set is the
//! configured targets, so it stays bounded).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One target's counters.
#[derive(Debug, Default)]
pub struct TargetCounters {
    /// Frames the upstream platform took (acknowledged with 9014 when a reply is wanted).
    pub sent: AtomicU64,
    /// Connect failures, write failures, reply timeouts: each one a reconnect and a resend.
    pub errors: AtomicU64,
    /// Readings not for this target (site, MN or CN filter) or without an MN to send under.
    pub skipped: AtomicU64,
    /// Readings given up unsent because the backlog exceeded `max_backlog`.
    pub dropped: AtomicU64,
    /// Readings queued and not yet sent.
    pub backlog: AtomicI64,
    /// 1 while connected.
    pub connected: AtomicI64,
}

#[derive(Debug, Default)]
pub struct ForwardMetrics {
    targets: Mutex<Vec<(String, Arc<TargetCounters>)>>,
}

impl ForwardMetrics {
    /// The counters of target `name` (created on first use).
    pub fn target(&self, name: &str) -> Arc<TargetCounters> {
        let mut t = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = t.iter().find(|(n, _)| n == name) {
            return c.clone();
        }
        let c = Arc::new(TargetCounters::default());
        t.push((name.to_string(), c.clone()));
        c
    }

    pub(super) fn render(&self, out: &mut String) {
        let t = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_empty() {
            return;
        }
        type Get = fn(&TargetCounters) -> i64;
        let series: [(&str, &str, &str, Get); 6] = [
            ("dustwatch_hj212_forward_sent_total", "counter", "HJ 212 frames forwarded upstream (acknowledged where a reply is wanted).", |c| c.sent.load(Relaxed) as i64),
            ("dustwatch_hj212_forward_errors_total", "counter", "Forwarding failures (connect, write, reply timeout); each is retried after a reconnect.", |c| c.errors.load(Relaxed) as i64),
            ("dustwatch_hj212_forward_skipped_total", "counter", "Readings not forwarded to a target: filtered out by site, MN or CN, or no MN to send under.", |c| c.skipped.load(Relaxed) as i64),
            ("dustwatch_hj212_forward_dropped_total", "counter", "Readings given up unsent because a target's backlog exceeded max_backlog.", |c| c.dropped.load(Relaxed) as i64),
            ("dustwatch_hj212_forward_backlog", "gauge", "Readings queued for a target and not yet sent.", |c| c.backlog.load(Relaxed)),
            ("dustwatch_hj212_forward_connected", "gauge", "1 while the connection to a target is up.", |c| c.connected.load(Relaxed)),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (target, c) in t.iter() {
                let target = target.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "{name}{{target=\"{target}\"}} {}", get(c));
            }
        }
    }
}
