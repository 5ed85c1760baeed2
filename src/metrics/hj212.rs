//! HJ 212 ingest counters (the MQTT topic and the TCP listener) and their exposition.

use dustwatch_protocol::hj212::{DropReason, Dropped, FACTOR_LABELS};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Labels of `dustwatch_hj212_rejected_total`: every `Hj212Error::label()` of the codec, then
/// `no_values` (a frame none of whose values could be stored), the TCP listener's identity
/// checks, then `other` (a label this list does not know yet).
pub const HJ212_REJECT_LABELS: [&str; 25] = [
    "bad_header",
    "bad_length",
    "length_mismatch",
    "truncated",
    "oversized",
    "bad_crc",
    "missing_crlf",
    "trailing_bytes",
    "bad_byte",
    "malformed",
    "missing_field",
    "duplicate_field",
    "unknown_field",
    "bad_field",
    "unknown_cn",
    "non_numeric",
    "bad_datatime",
    "not_data",
    "split_fragment",
    "split_mismatch",
    "no_values",
    "unknown_mn",
    "bad_password",
    "locked_out",
    "other",
];

/// HJ 212 counters: frames in, readings out, rejections by reason, the TCP listener's connections.
#[derive(Debug, Default)]
pub struct Hj212Metrics {
    rejected: [AtomicU64; HJ212_REJECT_LABELS.len()],
    /// Values left out of readings, by factor label and reason (both bounded lists).
    fields_dropped: [[AtomicU64; DropReason::ALL.len()]; FACTOR_LABELS.len()],
    /// Frames (or packets) received, MQTT and TCP.
    pub frames: AtomicU64,
    /// Frames that became readings (before deduplication).
    pub readings: AtomicU64,
    /// 9014/9011 replies written to TCP devices.
    pub replies: AtomicU64,
    /// TCP connections open now.
    pub connections_open: AtomicI64,
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// TCP connections refused because `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// TCP connections closed for idling, a frame arriving too slowly, or a reply not read.
    pub timeouts: AtomicU64,
    /// TCP connections closed after too many bad frames in a row.
    pub closed_for_errors: AtomicU64,
    /// TCP connections refused because `max_connections_per_addr` were open from that address.
    pub connections_refused_per_addr: AtomicU64,
    /// MN/PW refusals answered after a delay.
    pub auth_delayed: AtomicU64,
    /// Lockouts of an MN or an address started.
    pub lockouts: AtomicU64,
    /// MN/PW refusals without a dead letter (over `auth_dead_letters_per_min`; still counted).
    pub auth_dead_letters_dropped: AtomicU64,
    /// MNs and addresses tracked for MN/PW failures now.
    pub auth_tracked: AtomicI64,
}

impl Hj212Metrics {
    fn index(label: &str) -> usize {
        HJ212_REJECT_LABELS
            .iter()
            .position(|l| *l == label)
            .unwrap_or(HJ212_REJECT_LABELS.len() - 1)
    }

    pub fn reject(&self, label: &str) {
        if let Some(c) = self.rejected.get(Self::index(label)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Count the values a frame could not store.
    pub fn drop_fields(&self, dropped: &[Dropped]) {
        for d in dropped {
            if let Some(c) = self.dropped_counter(d.factor, d.reason) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// Values of `factor` (a `FACTOR_LABELS` entry) dropped for `reason`.
    pub fn fields_dropped(&self, factor: &str, reason: DropReason) -> u64 {
        self.dropped_counter(factor, reason)
            .map_or(0, |c| c.load(Relaxed))
    }

    fn dropped_counter(&self, factor: &str, reason: DropReason) -> Option<&AtomicU64> {
        let f = FACTOR_LABELS.iter().position(|l| *l == factor)?;
        let r = DropReason::ALL.iter().position(|x| *x == reason)?;
        self.fields_dropped.get(f)?.get(r)
    }

    pub fn rejected(&self, label: &str) -> u64 {
        self.rejected
            .get(Self::index(label))
            .map_or(0, |c| c.load(Relaxed))
    }

    pub(super) fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP dustwatch_hj212_rejected_total HJ 212 frames rejected, by reason (kept as dead letters).\n\
             # TYPE dustwatch_hj212_rejected_total counter"
        );
        for (label, c) in HJ212_REJECT_LABELS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "dustwatch_hj212_rejected_total{{reason=\"{label}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP dustwatch_hj212_fields_dropped_total HJ 212 values left out of stored readings, by factor code and reason (the raw frame is kept as a dead letter).\n\
             # TYPE dustwatch_hj212_fields_dropped_total counter"
        );
        for (factor, row) in FACTOR_LABELS.iter().zip(&self.fields_dropped) {
            for (reason, c) in DropReason::ALL.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "dustwatch_hj212_fields_dropped_total{{factor=\"{factor}\",reason=\"{}\"}} {}",
                    reason.label(),
                    c.load(Relaxed)
                );
            }
        }
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "dustwatch_hj212_frames_total",
                "HJ 212 frames and packets received (MQTT and TCP).",
                &self.frames,
            ),
            (
                "dustwatch_hj212_readings_total",
                "HJ 212 frames that became readings (before deduplication).",
                &self.readings,
            ),
            (
                "dustwatch_hj212_replies_total",
                "9014/9011 replies written to HJ 212 TCP devices.",
                &self.replies,
            ),
            (
                "dustwatch_hj212_connections_total",
                "HJ 212 TCP connections accepted.",
                &self.connections,
            ),
            (
                "dustwatch_hj212_connections_refused_total",
                "HJ 212 TCP connections refused at max_connections.",
                &self.connections_refused,
            ),
            (
                "dustwatch_hj212_timeouts_total",
                "HJ 212 TCP connections closed by the idle, read or write timeout.",
                &self.timeouts,
            ),
            (
                "dustwatch_hj212_closed_for_errors_total",
                "HJ 212 TCP connections closed after too many bad frames in a row.",
                &self.closed_for_errors,
            ),
            (
                "dustwatch_hj212_connections_refused_per_address_total",
                "HJ 212 TCP connections refused at max_connections_per_addr.",
                &self.connections_refused_per_addr,
            ),
            (
                "dustwatch_hj212_auth_delayed_total",
                "HJ 212 MN/PW refusals answered after a delay.",
                &self.auth_delayed,
            ),
            (
                "dustwatch_hj212_lockouts_total",
                "HJ 212 lockouts of an MN or an address after repeated MN/PW failures.",
                &self.lockouts,
            ),
            (
                "dustwatch_hj212_auth_dead_letters_dropped_total",
                "HJ 212 MN/PW refusals kept without a dead letter (rate limit; still counted).",
                &self.auth_dead_letters_dropped,
            ),
        ];
        super::write_counters(out, &counters);
        let _ = writeln!(
            out,
            "# HELP dustwatch_hj212_connections HJ 212 TCP connections open.\n\
             # TYPE dustwatch_hj212_connections gauge\ndustwatch_hj212_connections {}",
            self.connections_open.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP dustwatch_hj212_auth_tracked MNs and addresses tracked for MN/PW failures.\n\
             # TYPE dustwatch_hj212_auth_tracked gauge\ndustwatch_hj212_auth_tracked {}",
            self.auth_tracked.load(Relaxed)
        );
    }
}
