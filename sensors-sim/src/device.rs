//! The firmware loop of one monitor: sample at 1 Hz of simulated time, average into intervals,
//! publish at QoS 1 with `seq`/`boot`, keep a bounded store-and-forward buffer while offline, obey
//! `cmd`, reconnect with backoff. One tokio task per device; no per-second timers: the samples of
//! an interval are computed in one tight loop when the interval's simulated end is due.
//!
//! The link to the platform ([`crate::transport::Link`]) is MQTT, or HJ 212 over TCP for
//! `hj212_tcp` devices; this loop is the same for both. HJ 212 carries readings only, so a TCP
//! device queues no events or statuses and takes no commands.
//!
//! Files by job: [`sample`] measures (physics, sensor, sample faults), [`frame`] puts a reading on
//! the wire (JSON or HJ 212, message faults), [`outbox`] is the store-and-forward buffer,
//! [`link`] the connection to the platform, [`schedule`] the device's own timeline (intervals,
//! fault transitions, boots). This file holds the device's state, its main loop and what it does
//! on a command from the office.

mod frame;
mod link;
mod outbox;
pub mod sample;
mod schedule;

use crate::faults::{transitions, Transition};
use crate::physics::Run;
use crate::scenario::DevicePlan;
use crate::transport::Link;
use crate::{Shared, Stats};
use dustwatch_protocol::time::{MINUTE, SECOND};
use dustwatch_protocol::{Command, StatusState};
use link::recv;
use outbox::{InFlight, Kind, Msg};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sample::Sampler;
pub(crate) use schedule::align_up;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Firmware version reported in the status.
pub const FW: &str = "1.0.0";

/// What a device did, for the run summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceReport {
    pub unsent: usize,
}

pub(crate) struct Device {
    plan: DevicePlan,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    sampler: Sampler,
    jitter: ChaCha8Rng,
    client_id: String,
    /// reading, event, status, cmd, hj212, reply
    topics: [String; 6],
    transitions: Vec<(i64, Transition)>,
    next_transition: usize,

    boot: u32,
    seq: u64,
    event_seq: u64,
    interval_s: u32,
    /// End of the interval being sampled (ms) and its length (s); `i64::MAX` while powered off.
    next_end: i64,
    cur_len: u32,

    off: bool,
    net_blocked: bool,
    /// Outbox length when the current network outage began (start of its backfill).
    outage_mark: Option<usize>,
    outbox: VecDeque<Msg>,
    inflight: VecDeque<InFlight>,
    conn: Option<Link>,
    connected: bool,
    reconnect_at: Option<Instant>,
    backoff: std::time::Duration,
}

impl Device {
    pub(crate) fn new(plan: DevicePlan, shared: Arc<Shared>) -> Device {
        let p = &shared.plan;
        let site = plan.site.clone();
        let seed = p.seed ^ crate::physics::mix(plan.index as u64 + 1);
        let root = &shared.root;
        let (s, d) = (site.info.id.as_str(), plan.id.as_str());
        let topics = [
            root.reading(s, d),
            root.event(s, d),
            root.status(s, d),
            root.cmd(s, d),
            root.hj212(s, d),
            root.reply(s, d),
        ];
        let interval_s = p.interval_s;
        let i_ms = i64::from(interval_s) * SECOND;
        let first_end = align_up(p.begin_ms, i_ms) + i_ms;
        Device {
            client_id: format!("{}-{}-{}", shared.client_prefix, s, d),
            topics,
            sampler: Sampler::new(p, &plan),
            transitions: transitions(&plan.faults),
            next_transition: 0,
            jitter: ChaCha8Rng::seed_from_u64(seed ^ 0x6a69_7474),
            stats: shared.stats.clone(),
            // A resumed device has been powered down since the start: it boots anew, with a
            // counter that grows with the resume point (one per simulated minute) so that
            // (boot, seq) never repeats across resumed runs.
            boot: 1 + u32::try_from((p.begin_ms - p.start_ms) / MINUTE).unwrap_or(u32::MAX - 1),
            seq: 0,
            event_seq: 0,
            interval_s,
            next_end: first_end,
            cur_len: interval_s,
            off: false,
            net_blocked: false,
            outage_mark: None,
            outbox: VecDeque::new(),
            inflight: VecDeque::new(),
            conn: None,
            connected: false,
            reconnect_at: None,
            backoff: shared.backoff_min,
            plan,
            shared,
        }
    }

    /// Tell the lockstep where this device's next work is.
    fn announce(&self) {
        let next = self.next_wake().unwrap_or(i64::MAX);
        self.shared.lockstep.announce(self.plan.index, next);
    }

    fn end_ms(&self) -> i64 {
        self.shared.plan.end_ms.unwrap_or(i64::MAX)
    }

    /// Simulated time this device has reached.
    fn now_ms(&self) -> i64 {
        let done = self
            .next_end
            .saturating_sub(i64::from(self.cur_len) * SECOND);
        if self.shared.clock.is_max() {
            done
        } else {
            self.shared.clock.now_ms().max(done)
        }
    }

    /// The next simulated instant with work to do, if any before the end of the run.
    fn next_wake(&self) -> Option<i64> {
        let end = self.end_ms();
        let interval = (self.next_end <= end).then_some(self.next_end);
        let transition = self
            .transitions
            .get(self.next_transition)
            .map(|t| t.0)
            .filter(|t| *t < end);
        match (interval, transition) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// With `--speed max`, generate only as fast as the broker acknowledges, except while a fault
    /// keeps the device away (then the buffer fills as it would in real time).
    fn can_generate(&self) -> bool {
        if !self.shared.clock.is_max() || self.net_blocked || self.off {
            return true;
        }
        self.connected && self.outbox.len() + self.inflight.len() < self.shared.window
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> DeviceReport {
        self.announce();
        self.reconnect_at = Some(Instant::now() + self.shared.stagger(self.plan.index));
        let mut spins = 0u32;
        // One future for the whole run: a new `cancelled()` per turn registers and unregisters
        // a waiter on the token each time.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let wake = self.next_wake();
            if wake.is_none() && self.net_blocked {
                // The span is over: a network outage still open heals so the buffer is delivered.
                let newest_first = self
                    .transitions
                    .get(self.next_transition)
                    .is_some_and(|t| t.1 == Transition::NetUp { newest_first: true });
                self.apply(self.end_ms(), Transition::NetUp { newest_first });
            }
            if wake.is_none() && self.outbox.is_empty() && self.inflight.is_empty() {
                break;
            }
            let gen = wake.is_some() && self.can_generate();
            let reconnect = self.conn.is_none() && !self.net_blocked && !self.off;
            let reconnect_at = self.reconnect_at.unwrap_or_else(Instant::now);
            let wake_at = wake.unwrap_or(i64::MAX);
            let shared = self.shared.clone();
            tokio::select! {
                biased;
                _ = &mut cancelled => break,
                ev = recv(&mut self.conn) => self.on_net(ev),
                _ = tokio::time::sleep_until(reconnect_at), if reconnect => self.connect(),
                _ = due(&shared, self.plan.index, wake_at), if gen => {
                    self.advance(wake_at);
                    if self.shared.clock.is_max() {
                        // Fill the window in one turn, so the publishes leave in one write
                        // instead of one syscall (and one loop turn) per reading.
                        let mut batch = 1;
                        while batch < self.shared.window && self.can_generate() {
                            match self.next_wake() {
                                Some(t) if self.shared.lockstep.may(self.plan.index, t) => {
                                    self.advance(t)
                                }
                                _ => break,
                            }
                            batch += 1;
                        }
                    }
                    // --speed max never waits on a timer: yield now and then so one device cannot
                    // hold a worker thread.
                    spins += 1;
                    if spins.is_multiple_of(32) {
                        tokio::task::yield_now().await;
                    }
                }
            }
            self.pump();
        }
        // Done: this device no longer holds back the --speed max city feed.
        self.shared.progress[self.plan.index].store(i64::MAX, Ordering::Relaxed);
        self.shared.lockstep.announce(self.plan.index, i64::MAX);
        self.finish(&shutdown).await;
        let unsent = self
            .outbox
            .iter()
            .chain(self.inflight.iter().map(|f| &f.msg))
            .filter(|m| m.kind == Kind::Reading)
            .count();
        DeviceReport { unsent }
    }

    fn on_command(&mut self, payload: &[u8]) {
        let cmd = match crate::commands::decode(payload) {
            Ok(envelope) => {
                // Answered first: a reboot below keeps the outbox, so the answer goes out after.
                if let Some(reply) = crate::commands::answer(&envelope, self.now_ms()) {
                    self.push(Msg {
                        kind: Kind::Reply,
                        payload: reply,
                        retain: false,
                    });
                }
                envelope.command
            }
            Err(e) => {
                tracing::warn!(client = %self.client_id, error = %e, "ignoring bad command");
                self.stats.bad_commands.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        match cmd {
            Command::SetInterval { interval_s } => {
                // The interval under way finishes with its old length; the next one is aligned
                // to the new length.
                self.interval_s = interval_s;
                let status = self.status(StatusState::Online);
                self.push_status(status);
            }
            Command::Sprinkle { duration_s } => {
                let from = self
                    .next_end
                    .saturating_sub(i64::from(self.cur_len) * SECOND);
                let start = align_up(now.max(from), 1000);
                self.sampler.runs.push(Run {
                    start,
                    end: start + i64::from(duration_s) * SECOND,
                });
            }
            Command::StopWork { duration_s, .. } => {
                // From the next whole second; the samples already taken keep what they saw.
                let start = align_up(now, 1000);
                let end = duration_s.map_or(i64::MAX, |d| start + i64::from(d) * SECOND);
                self.sampler.stopped = Some(Run { start, end });
            }
            Command::ResumeWork { .. } => {
                let at = align_up(now, 1000);
                if let Some(s) = self.sampler.stopped.as_mut() {
                    s.end = s.end.min(at.max(s.start));
                }
            }
            Command::Reboot => {
                // A restart loses the interval under way, like real firmware.
                self.drop_conn(true);
                self.power_on(align_up(now, 1000));
            }
        }
    }
}

/// Wait until the simulated instant `t` is due for device `who`: on the paced clock, or at
/// `--speed max` when the rest of the fleet has caught up with it (lockstep).
async fn due(shared: &Shared, who: usize, t: i64) {
    if shared.clock.is_max() {
        shared.lockstep.wait(who, t).await;
    } else {
        shared.clock.sleep_until(t).await;
    }
}
