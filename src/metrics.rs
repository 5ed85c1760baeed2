//! Counters a user would graph, rendered in the Prometheus text format at `/metrics`.
//! Plain atomics: every task updates them without a lock.

mod acting;
mod auth;
mod hj212;
mod hj212_forward;
mod http;
mod nats;
mod process;

pub use acting::ActingMetrics;
pub use auth::AuthMetrics;
pub use hj212::{Hj212Metrics, HJ212_REJECT_LABELS};
pub use hj212_forward::{ForwardMetrics, TargetCounters};
pub use http::HttpMetrics;
pub use nats::NatsMetrics;

use dustwatch_protocol::RejectReason;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Upper bounds of histogram buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The bucket bound under which `q` of the observations fall (an upper estimate).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            seen += self.counts[i].load(Relaxed);
            if seen >= target {
                return Some(*b);
            }
        }
        Some(f64::INFINITY)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric of the aggregator.
#[derive(Debug, Default)]
pub struct Metrics {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub other_stored: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    pub batches: AtomicU64,
    pub store_errors: AtomicU64,
    pub reconnects: AtomicU64,
    pub mqtt_connected: AtomicI64,
    /// 1 once the broker confirmed the subscriptions of the current connection.
    pub mqtt_subscribed: AtomicI64,
    pub queue_depth: AtomicI64,
    /// Newest event time committed, Unix ms.
    pub newest_event_ms: AtomicI64,
    /// The clock the fleet agrees on (median of sites' newest event times), Unix ms; retention
    /// and "offline" follow it.
    pub fleet_clock_ms: AtomicI64,
    /// 1 while the store refuses writes that retrying may fix (locked, disk full): ingest waits.
    pub store_stalled: AtomicI64,
    /// Why the store is stalled, for `/healthz`.
    store_stall: std::sync::Mutex<Option<String>>,
    /// Retention passes (per table) refused because they would delete too much.
    pub retention_refused: AtomicU64,
    /// Retention passes run.
    pub retention_passes: AtomicU64,
    /// Store batch commit duration.
    pub batch_seconds: Histogram,
    /// From receipt of a message to its commit.
    pub commit_seconds: Histogram,
    /// From a reading's event time to its commit (end-to-end delay when device clocks are right).
    pub event_to_commit_seconds: Histogram,
    /// HJ 212 ingest (MQTT topic and TCP listener).
    pub hj212: Hj212Metrics,
    pub hj212_forward: ForwardMetrics,
    /// The HTTP server and its live streams.
    pub http: HttpMetrics,
    /// Device commands and notifications.
    pub acting: ActingMetrics,
    /// NATS JetStream ingest: partitions, leases, fencing.
    pub nats: NatsMetrics,
    /// Logins and refused credentials.
    pub auth: AuthMetrics,
    /// InfluxDB export: 1 when configured.
    pub export_enabled: AtomicI64,
    /// Lines the long-term store accepted.
    pub export_lines: AtomicU64,
    /// Export writes that failed and will be retried.
    pub export_errors: AtomicU64,
    /// Lines the long-term store refused as malformed (400/422), skipped.
    pub export_dropped: AtomicU64,
    /// Outbox rows committed but not yet exported.
    pub export_backlog: AtomicI64,
    /// Wall-clock time of the last successful export write, Unix ms (0 = none yet).
    pub export_last_success_ms: AtomicI64,
}

impl Metrics {
    /// Record why the store is stalled (`None`: it writes again).
    pub fn set_store_stall(&self, why: Option<String>) {
        *self.store_stall.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Why the store is stalled, if it is.
    pub fn store_stall(&self) -> Option<String> {
        if self.store_stalled.load(Relaxed) == 0 {
            return None;
        }
        self.store_stall
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .or_else(|| Some("store writes fail".into()))
    }

    pub fn reject(&self, reason: RejectReason, n: u64) {
        let i = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("RejectReason::ALL lists every reason");
        self.rejected[i].fetch_add(n, Relaxed);
    }

    pub fn rejected(&self, reason: RejectReason) -> u64 {
        RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Relaxed))
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut out,
            "dustwatch_messages_received_total",
            "MQTT messages received by ingest.",
            self.received.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_readings_stored_total",
            "Readings committed to the store for the first time.",
            self.stored.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_duplicates_total",
            "Readings and events already stored (redelivery or duplicate publish).",
            self.duplicates.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_other_records_total",
            "Events, status messages and city levels stored.",
            self.other_stored.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP dustwatch_rejected_total Messages rejected, by reason (kept as dead letters).\n\
             # TYPE dustwatch_rejected_total counter"
        );
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "dustwatch_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                self.rejected[i].load(Relaxed)
            );
        }
        counter(
            &mut out,
            "dustwatch_store_batches_total",
            "Store batches committed.",
            self.batches.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_store_errors_total",
            "Store batches that failed and were retried.",
            self.store_errors.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_mqtt_reconnects_total",
            "Connections (re)established to the MQTT broker.",
            self.reconnects.load(Relaxed),
        );
        gauge(
            &mut out,
            "dustwatch_mqtt_connected",
            "1 while connected to the MQTT broker.",
            self.mqtt_connected.load(Relaxed) as f64,
        );
        gauge(
            &mut out,
            "dustwatch_mqtt_subscribed",
            "1 once the broker confirmed the subscriptions of the current connection.",
            self.mqtt_subscribed.load(Relaxed) as f64,
        );
        gauge(
            &mut out,
            "dustwatch_ingest_queue_depth",
            "Messages waiting for the store writer.",
            self.queue_depth.load(Relaxed) as f64,
        );
        gauge(
            &mut out,
            "dustwatch_store_stalled",
            "1 while the store refuses writes that retrying may fix (locked, disk full); ingest waits and acknowledges nothing.",
            self.store_stalled.load(Relaxed) as f64,
        );
        counter(
            &mut out,
            "dustwatch_retention_passes_total",
            "Retention passes run (every [store] retention_every_s of wall-clock time).",
            self.retention_passes.load(Relaxed),
        );
        counter(
            &mut out,
            "dustwatch_retention_refused_total",
            "Retention passes of a table refused because they would have deleted more than [store] retention_max_share.",
            self.retention_refused.load(Relaxed),
        );
        gauge(
            &mut out,
            "dustwatch_fleet_clock_timestamp_seconds",
            "The clock the fleet agrees on (median of sites' newest event times); retention and offline follow it.",
            self.fleet_clock_ms.load(Relaxed) as f64 / 1000.0,
        );
        let newest = self.newest_event_ms.load(Relaxed);
        gauge(
            &mut out,
            "dustwatch_newest_event_timestamp_seconds",
            "Event time of the newest committed reading.",
            newest as f64 / 1000.0,
        );
        gauge(
            &mut out,
            "dustwatch_ingest_lag_seconds",
            "Wall clock minus the newest committed event time (grows when data stops).",
            if newest > 0 {
                (chrono::Utc::now().timestamp_millis() - newest) as f64 / 1000.0
            } else {
                0.0
            },
        );
        if self.export_enabled.load(Relaxed) == 1 {
            counter(
                &mut out,
                "dustwatch_export_lines_total",
                "Lines written to the long-term store (InfluxDB).",
                self.export_lines.load(Relaxed),
            );
            counter(
                &mut out,
                "dustwatch_export_errors_total",
                "Export writes that failed and are retried with backoff.",
                self.export_errors.load(Relaxed),
            );
            counter(
                &mut out,
                "dustwatch_export_dropped_lines_total",
                "Lines the long-term store refused as malformed (skipped; still in SQLite).",
                self.export_dropped.load(Relaxed),
            );
            gauge(
                &mut out,
                "dustwatch_export_backlog",
                "Records committed to SQLite and not yet exported.",
                self.export_backlog.load(Relaxed) as f64,
            );
            gauge(
                &mut out,
                "dustwatch_export_last_success_timestamp_seconds",
                "Wall-clock time of the last successful export write (0 = none yet).",
                self.export_last_success_ms.load(Relaxed) as f64 / 1000.0,
            );
        }
        self.hj212.render(&mut out);
        self.hj212_forward.render(&mut out);
        self.http.render(&mut out);
        self.acting.render(&mut out);
        self.nats.render(&mut out);
        self.auth.render(&mut out);
        self.batch_seconds.render(
            &mut out,
            "dustwatch_store_batch_seconds",
            "Time to commit one store batch.",
        );
        self.commit_seconds.render(
            &mut out,
            "dustwatch_ingest_commit_seconds",
            "From receipt of a message to its commit.",
        );
        self.event_to_commit_seconds.render(
            &mut out,
            "dustwatch_event_to_commit_seconds",
            "From a reading's event time to its commit.",
        );
        process::render(&mut out);
        out
    }
}

/// Counters of one part, each with its help line (Prometheus text format).
fn write_counters(out: &mut String, counters: &[(&str, &str, &AtomicU64)]) {
    for (name, help, c) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            c.load(Relaxed)
        );
    }
}

/// Gauges of one part, each with its help line (Prometheus text format).
fn write_gauges(out: &mut String, gauges: &[(&str, &str, &AtomicI64)]) {
    for (name, help, g) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
            g.load(Relaxed)
        );
    }
}
