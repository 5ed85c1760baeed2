//! The device's own timeline: fault transitions (network down and up, power off and on), booting,
//! and each interval's reading sampled, encoded and queued.

use super::frame::encode;
use super::outbox::{Kind, Msg};
use super::Device;
use crate::faults::{MessageFaults, Transition};
use dustwatch_protocol::time::SECOND;
use dustwatch_protocol::EventKind;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// Align `t` up to a multiple of `step_ms`.
pub(crate) fn align_up(t: i64, step_ms: i64) -> i64 {
    t.div_euclid(step_ms) * step_ms
        + if t.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_ms
        }
}

impl Device {
    /// Do the work due at simulated `t`: a fault transition or the end of an interval.
    pub(super) fn advance(&mut self, t: i64) {
        let transition = self.transitions.get(self.next_transition).copied();
        match transition {
            Some((tt, tr)) if tt == t && tt < self.next_end => {
                self.next_transition += 1;
                self.apply(tt, tr);
                self.shared.progress[self.plan.index].fetch_max(tt, Ordering::Relaxed);
            }
            _ => {
                let end = self.next_end;
                self.interval(end);
                let i_ms = i64::from(self.interval_s) * SECOND;
                let next = align_up(end + 1, i_ms);
                self.cur_len = ((next - end) / SECOND) as u32;
                self.next_end = next;
            }
        }
        self.announce();
    }

    pub(super) fn apply(&mut self, t: i64, tr: Transition) {
        match tr {
            Transition::NetDown => {
                self.net_blocked = true;
                self.drop_conn(true);
                self.outage_mark = Some(self.outbox.len());
            }
            Transition::NetUp { newest_first } => {
                self.net_blocked = false;
                if let Some(mark) = self.outage_mark.take() {
                    if newest_first {
                        // Some firmware sends the latest first and backfills the rest after.
                        let from = mark.min(self.outbox.len());
                        self.outbox.make_contiguous()[from..].reverse();
                    }
                }
                self.reconnect_at = Some(Instant::now());
                self.backoff = self.shared.backoff_min;
            }
            Transition::PowerOff => {
                self.off = true;
                self.drop_conn(true);
                self.next_end = i64::MAX;
            }
            Transition::PowerOn => {
                self.off = false;
                self.power_on(t);
            }
        }
    }

    /// Boot: `boot` + 1, `seq` from 0, a `reboot` event, sampling from the next aligned interval.
    pub(super) fn power_on(&mut self, t: i64) {
        self.boot += 1;
        self.seq = 0;
        self.event_seq = 0;
        let i_ms = i64::from(self.interval_s) * SECOND;
        let start = align_up(t, i_ms);
        self.next_end = start + i_ms;
        self.cur_len = self.interval_s;
        self.push_event(t, EventKind::Reboot);
        self.announce();
        // Booting takes a moment; the broker sees the old connection die before the new one.
        self.reconnect_at = Some(Instant::now() + self.shared.backoff_min);
        self.backoff = self.shared.backoff_min;
    }

    /// Sample the interval ending at `end` at 1 Hz and queue its events, then its reading.
    fn interval(&mut self, end: i64) {
        let sampled = self
            .sampler
            .interval(&self.shared.plan, &self.plan, end, self.cur_len);
        for (ts, kind) in sampled.events {
            self.push_event(ts, kind);
        }
        let mut r = sampled.reading;
        r.seq = self.seq;
        r.boot = self.boot;
        self.seq += 1;
        self.stats.generated.fetch_add(1, Ordering::Relaxed);
        self.shared.progress[self.plan.index].store(end, Ordering::Relaxed);
        let start = end - i64::from(self.cur_len) * SECOND;
        let mf = MessageFaults::at(&self.plan.faults, start);
        let payload = encode(&mut r, &self.plan, &mf);
        let copies = if mf.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            self.stats.buffered.fetch_add(1, Ordering::Relaxed);
            self.push(Msg {
                kind: Kind::Reading,
                payload: payload.clone(),
                retain: false,
            });
        }
    }
}
