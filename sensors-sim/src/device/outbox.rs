//! The store-and-forward buffer: what a device queues (readings, events, statuses), bounded, the
//! oldest dropped and counted when full; statuses jump the queue.

use super::{Device, FW};
use crate::scenario::Transport;
use dustwatch_protocol::{Event, EventKind, EventTime, Status, StatusState};
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Reading,
    Event,
    Status,
    /// An answer to a command (`crate::commands`).
    Reply,
}

#[derive(Debug, Clone)]
pub(super) struct Msg {
    pub kind: Kind,
    pub payload: Vec<u8>,
    pub retain: bool,
}

pub(super) struct InFlight {
    pub msg: Msg,
    pub pkid: Option<u16>,
}

impl Device {
    pub(super) fn status(&self, state: StatusState) -> Msg {
        let s = Status {
            state,
            fw: Some(FW.to_string()),
            boot: Some(self.boot),
            interval_s: Some(self.interval_s),
            ts: Some(EventTime(self.now_ms())),
        };
        Msg {
            kind: Kind::Status,
            payload: serde_json::to_vec(&s).unwrap_or_default(),
            retain: true,
        }
    }

    /// Whether the link can carry this kind of message (HJ 212 over TCP: readings only).
    pub(super) fn carries(&self, kind: Kind) -> bool {
        kind == Kind::Reading || self.plan.transport != Transport::Hj212Tcp
    }

    /// Statuses jump the queue; an older unsent one is stale.
    pub(super) fn push_status(&mut self, msg: Msg) {
        if !self.carries(msg.kind) {
            return;
        }
        self.outbox.retain(|m| m.kind != Kind::Status);
        self.outbox.push_front(msg);
    }

    /// Store-and-forward: bounded, the oldest dropped and counted when full.
    pub(super) fn push(&mut self, msg: Msg) {
        if !self.carries(msg.kind) {
            return;
        }
        if self.outbox.len() >= self.shared.plan.buffer_capacity {
            if let Some(old) = self.outbox.pop_front() {
                if let Some(m) = self.outage_mark.as_mut() {
                    *m = m.saturating_sub(1);
                }
                if old.kind == Kind::Reading {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.outbox.push_back(msg);
    }

    pub(super) fn push_event(&mut self, ts: i64, kind: EventKind) {
        let e = Event {
            ts: EventTime(ts),
            seq: self.event_seq,
            boot: self.boot,
            kind,
        };
        self.event_seq += 1;
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        self.push(Msg {
            kind: Kind::Event,
            payload: serde_json::to_vec(&e).unwrap_or_default(),
            retain: false,
        });
    }
}
