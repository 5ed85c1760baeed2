//! HTTP server counters: connections and live (`/events`) streams.

use std::sync::atomic::{AtomicI64, AtomicU64};

/// The HTTP server: connections and live (`/events`) streams.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicI64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// Connections closed for sending nothing for `idle_timeout_s`.
    pub idle_closed: AtomicU64,
    /// Live streams open now.
    pub live_streams: AtomicI64,
    /// Live streams refused (503) at `max_streams`.
    pub live_streams_refused: AtomicU64,
    /// Live-update computations (one per tick while a stream is open, whatever their number).
    pub live_updates: AtomicU64,
}

impl HttpMetrics {
    pub(super) fn render(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "dustwatch_http_connections_total",
                "HTTP connections accepted.",
                &self.connections,
            ),
            (
                "dustwatch_http_connections_refused_total",
                "HTTP connections closed at once at max_connections.",
                &self.connections_refused,
            ),
            (
                "dustwatch_http_idle_closed_total",
                "HTTP connections closed after idle_timeout_s without traffic.",
                &self.idle_closed,
            ),
            (
                "dustwatch_live_streams_refused_total",
                "Live (/events) streams refused with 503 at max_streams.",
                &self.live_streams_refused,
            ),
            (
                "dustwatch_live_updates_total",
                "Live-update computations (once per tick for all streams together).",
                &self.live_updates,
            ),
        ];
        super::write_counters(out, &counters);
        let gauges: [(&str, &str, &AtomicI64); 2] = [
            (
                "dustwatch_http_connections",
                "HTTP connections open.",
                &self.connections_open,
            ),
            (
                "dustwatch_live_streams",
                "Live (/events) streams open.",
                &self.live_streams,
            ),
        ];
        super::write_gauges(out, &gauges);
    }
}
