//! The firmware loop of one monitor: sample at 1 Hz of simulated time, average into intervals,
//! publish at QoS 1 with `seq`/`boot`, keep a bounded store-and-forward buffer while offline, obey
//! `cmd`, reconnect with backoff. One tokio task per device; no per-second timers: the samples of
//! an interval are computed in one tight loop when the interval's simulated end is due.
//!
//! The link to the platform ([`crate::transport::Link`]) is MQTT, or HJ 212 over TCP for
//! `hj212_tcp` devices; this loop is the same for both. HJ 212 carries readings only, so a TCP
//! device queues no events or statuses and takes no commands.

use crate::faults::{transitions, MessageFaults, SampleFaults, Transition};
use crate::net::{Connection, NetEvent};
use crate::physics::{
    ambient_noise, energy_sum, site_increment, sprinkle_reduction, Activity, Run, SiteSource,
};
use crate::scenario::{hj212_mn, DevicePlan, Plan, Transport, HJ212_PASSWORD};
use crate::sensor::{gauss, round_to, LaserPm};
use crate::transport::{Link, Queued};
use crate::{Shared, Stats};
use dustwatch_protocol::{Command, Event, EventKind, Flag, Reading, SiteKind, Status, StatusState};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Firmware version reported in the status.
pub const FW: &str = "1.0.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reading,
    Event,
    Status,
    Reply,
}

#[derive(Debug, Clone)]
struct Msg {
    kind: Kind,
    payload: Vec<u8>,
    retain: bool,
}

struct InFlight {
    msg: Msg,
    pkid: Option<u16>,
}

/// What a device did, for the run summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceReport {
    pub unsent: usize,
}

pub(crate) struct Device {
    plan: DevicePlan,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    rng: ChaCha8Rng,
    jitter: ChaCha8Rng,
    client_id: String,
    /// reading, event, status, cmd, hj212, reply
    topics: [String; 6],
    sensor: LaserPm,
    hygroscopic: f64,
    station_gain: f64,
    sample_faults: SampleFaults,
    transitions: Vec<(i64, Transition)>,
    next_transition: usize,

    boot: u32,
    seq: u64,
    event_seq: u64,
    interval_s: u32,
    /// End of the interval being sampled (ms) and its length (s); `i64::MAX` while powered off.
    next_end: i64,
    cur_len: u32,
    runs: Vec<Run>,
    last_auto: i64,

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

/// Align `t` up to a multiple of `step_ms`.
fn align_up(t: i64, step_ms: i64) -> i64 {
    t.div_euclid(step_ms) * step_ms
        + if t.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_ms
        }
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
        let reference = site.info.kind == SiteKind::Reference;
        // Reference stations are heated-inlet instruments: no humidity bias, less noise.
        let sensor = if reference {
            LaserPm {
                rel_noise: 0.03,
                abs_noise: 2.0,
                ..LaserPm::default()
            }
        } else {
            LaserPm::default()
        };
        let station_gain =
            1.0 + 0.1 * (crate::physics::unit(p.seed ^ 0x5354, site.index as u64) - 0.5);
        let interval_s = p.interval_s;
        let i_ms = i64::from(interval_s) * 1000;
        let first_end = align_up(p.begin_ms, i_ms) + i_ms;
        Device {
            client_id: format!("{}-{}-{}", shared.client_prefix, s, d),
            topics,
            sensor,
            hygroscopic: if reference { 0.0 } else { 1.0 },
            station_gain,
            sample_faults: SampleFaults::new(&plan.faults),
            transitions: transitions(&plan.faults),
            next_transition: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            jitter: ChaCha8Rng::seed_from_u64(seed ^ 0x6a69_7474),
            stats: shared.stats.clone(),
            // A resumed device has been powered down since the start: it boots anew, with a
            // counter that grows with the resume point (one per simulated minute) so that
            // (boot, seq) never repeats across resumed runs.
            boot: 1 + u32::try_from((p.begin_ms - p.start_ms) / 60_000).unwrap_or(u32::MAX - 1),
            seq: 0,
            event_seq: 0,
            interval_s,
            next_end: first_end,
            cur_len: interval_s,
            runs: Vec::new(),
            last_auto: i64::MIN / 2,
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

    fn end_ms(&self) -> i64 {
        self.shared.plan.end_ms.unwrap_or(i64::MAX)
    }

    /// Simulated time this device has reached.
    fn now_ms(&self) -> i64 {
        let done = self.next_end.saturating_sub(i64::from(self.cur_len) * 1000);
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
            tokio::select! {
                biased;
                _ = &mut cancelled => break,
                ev = recv(&mut self.conn) => self.on_net(ev),
                _ = tokio::time::sleep_until(reconnect_at), if reconnect => self.connect(),
                _ = self.shared.clock.sleep_until(wake_at), if gen => {
                    self.advance(wake_at);
                    if self.shared.clock.is_max() {
                        // Fill the window in one turn, so the publishes leave in one write
                        // instead of one syscall (and one loop turn) per reading.
                        let mut batch = 1;
                        while batch < self.shared.window && self.can_generate() {
                            match self.next_wake() {
                                Some(t) => self.advance(t),
                                None => break,
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
        self.finish(&shutdown).await;
        let unsent = self
            .outbox
            .iter()
            .chain(self.inflight.iter().map(|f| &f.msg))
            .filter(|m| m.kind == Kind::Reading)
            .count();
        DeviceReport { unsent }
    }

    /// Publish a retained offline status and disconnect cleanly (no last will needed).
    async fn finish(&mut self, shutdown: &CancellationToken) {
        if !self.connected {
            self.drop_conn(false);
            return;
        }
        if self.carries(Kind::Status) {
            let status = self.status(StatusState::Offline);
            self.outbox.push_front(status);
        }
        // Wait for the remaining acks (including the status) unless the run is cancelled again.
        while !(self.outbox.is_empty() && self.inflight.is_empty()) && self.connected {
            self.pump();
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !shutdown.is_cancelled() => break,
                ev = recv(&mut self.conn) => self.on_net(ev),
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)), if shutdown.is_cancelled() => break,
            }
        }
        if let Some(c) = self.conn.as_mut() {
            c.try_disconnect();
            // The link reports `Lost` once DISCONNECT is on the wire.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while let Some(ev) = c.recv().await {
                    if matches!(ev, NetEvent::Lost(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.conn = None;
        self.connected = false;
    }

    fn connect(&mut self) {
        if self.plan.transport == Transport::Hj212Tcp {
            // `Sim::run` refuses to start TCP devices without a platform, so this is set.
            if let Some(platform) = &self.shared.platform {
                self.conn = Some(Link::Hj212Tcp(crate::hj212_tcp::Hj212Link::open(platform)));
            }
            self.reconnect_at = None;
            return;
        }
        let will = (
            self.topics[2].clone(),
            serde_json::to_vec(&Status {
                state: StatusState::Offline,
                fw: None,
                boot: None,
                interval_s: None,
                ts: None,
            })
            .unwrap_or_default(),
        );
        let login = self
            .shared
            .endpoint
            .device_login(&self.plan.site.info.id, &self.plan.id);
        self.conn = Some(Link::Mqtt(Connection::open_as(
            &self.shared.endpoint,
            &self.client_id,
            login,
            Some(will),
        )));
        self.reconnect_at = None;
    }

    /// Drop the connection; `crash` = as a pulled cable (last will fires), else quietly.
    fn drop_conn(&mut self, crash: bool) {
        if let Some(c) = self.conn.take() {
            if crash {
                c.abort();
            }
        }
        if self.connected {
            self.connected = false;
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        // Whatever was not acknowledged goes back to the front, in order.
        while let Some(f) = self.inflight.pop_back() {
            self.outbox.push_front(f.msg);
        }
    }

    fn on_net(&mut self, ev: Option<NetEvent>) {
        match ev {
            Some(NetEvent::Connected) => {
                self.connected = true;
                self.backoff = self.shared.backoff_min;
                self.stats.connected.fetch_add(1, Ordering::Relaxed);
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = self.conn.as_mut() {
                    c.try_subscribe(&self.topics[3]);
                }
                let status = self.status(StatusState::Online);
                self.push_status(status);
            }
            Some(NetEvent::Sent(pkid)) => {
                if let Some(f) = self.inflight.iter_mut().find(|f| f.pkid.is_none()) {
                    f.pkid = Some(pkid);
                }
                self.stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Some(NetEvent::Acked(pkid)) => {
                if let Some(i) = self.inflight.iter().position(|f| f.pkid == Some(pkid)) {
                    if let Some(f) = self.inflight.remove(i) {
                        if f.msg.kind == Kind::Reading {
                            self.stats.acked.fetch_add(1, Ordering::Relaxed);
                            self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Some(NetEvent::Unanswered(pkid)) => {
                if let Some(i) = self.inflight.iter().position(|f| f.pkid == Some(pkid)) {
                    if let Some(f) = self.inflight.remove(i) {
                        if f.msg.kind == Kind::Reading {
                            self.stats.unanswered.fetch_add(1, Ordering::Relaxed);
                            self.stats.buffered.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Some(NetEvent::Message(payload)) => self.on_command(&payload),
            Some(NetEvent::Lost(reason)) => self.lost(&reason),
            None => self.lost("connection task ended"),
        }
    }

    fn lost(&mut self, reason: &str) {
        let was_connected = self.connected;
        self.drop_conn(false);
        if !was_connected {
            // Never got in: back off exponentially, as firmware does.
            self.backoff = (self.backoff * 2).min(self.shared.backoff_max);
            self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(client = %self.client_id, reason, "connection lost");
        let jitter = self.jitter.gen_range(0.5..1.5);
        self.reconnect_at = Some(Instant::now() + self.backoff.mul_f64(jitter));
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
                let from = self.next_end.saturating_sub(i64::from(self.cur_len) * 1000);
                let start = align_up(now.max(from), 1000);
                self.runs.push(Run {
                    start,
                    end: start + i64::from(duration_s) * 1000,
                });
            }
            Command::Reboot => {
                // A restart loses the interval under way, like real firmware.
                self.drop_conn(true);
                self.power_on(align_up(now, 1000));
            }
        }
    }

    fn status(&self, state: StatusState) -> Msg {
        let s = Status {
            state,
            fw: Some(FW.to_string()),
            boot: Some(self.boot),
            interval_s: Some(self.interval_s),
            ts: Some(self.now_ms()),
        };
        Msg {
            kind: Kind::Status,
            payload: serde_json::to_vec(&s).unwrap_or_default(),
            retain: true,
        }
    }

    /// Whether the link can carry this kind of message (HJ 212 over TCP: readings only).
    fn carries(&self, kind: Kind) -> bool {
        kind == Kind::Reading || self.plan.transport != Transport::Hj212Tcp
    }

    /// Statuses jump the queue; an older unsent one is stale.
    fn push_status(&mut self, msg: Msg) {
        if !self.carries(msg.kind) {
            return;
        }
        self.outbox.retain(|m| m.kind != Kind::Status);
        self.outbox.push_front(msg);
    }

    /// Store-and-forward: bounded, the oldest dropped and counted when full.
    fn push(&mut self, msg: Msg) {
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

    fn push_event(&mut self, ts: i64, kind: EventKind) {
        let e = Event {
            ts,
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

    /// Hand queued messages to the MQTT client, up to the in-flight window.
    fn pump(&mut self) {
        if !self.connected {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while self.inflight.len() < self.shared.window {
            let Some(msg) = self.outbox.pop_front() else {
                break;
            };
            let topic = match msg.kind {
                Kind::Reading if self.plan.transport == Transport::Hj212Mqtt => &self.topics[4],
                Kind::Reading => &self.topics[0],
                Kind::Event => &self.topics[1],
                Kind::Status => &self.topics[2],
                Kind::Reply => &self.topics[5],
            };
            match conn.try_publish(topic, msg.retain, &msg.payload) {
                Queued::Id(pkid) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    self.inflight.push_back(InFlight {
                        msg,
                        pkid: Some(pkid),
                    });
                }
                Queued::Later => self.inflight.push_back(InFlight { msg, pkid: None }),
                Queued::No => {
                    // Full or closed: keep it; the connection event will tell which.
                    self.outbox.push_front(msg);
                    break;
                }
            }
        }
    }

    /// Do the work due at simulated `t`: a fault transition or the end of an interval.
    fn advance(&mut self, t: i64) {
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
                let i_ms = i64::from(self.interval_s) * 1000;
                let next = align_up(end + 1, i_ms);
                self.cur_len = ((next - end) / 1000) as u32;
                self.next_end = next;
            }
        }
    }

    fn apply(&mut self, t: i64, tr: Transition) {
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
    fn power_on(&mut self, t: i64) {
        self.boot += 1;
        self.seq = 0;
        self.event_seq = 0;
        let i_ms = i64::from(self.interval_s) * 1000;
        let start = align_up(t, i_ms);
        self.next_end = start + i_ms;
        self.cur_len = self.interval_s;
        self.push_event(t, EventKind::Reboot);
        // Booting takes a moment; the broker sees the old connection die before the new one.
        self.reconnect_at = Some(Instant::now() + self.shared.backoff_min);
        self.backoff = self.shared.backoff_min;
    }

    /// Sample the interval ending at `end` at 1 Hz and queue its reading (and events).
    fn interval(&mut self, end: i64) {
        let shared = self.shared.clone();
        let plan: &Plan = &shared.plan;
        let site = self.plan.site.clone();
        let len = i64::from(self.cur_len);
        let start = end - len * 1000;
        let offset_s = plan.utc_offset_s(start);
        let src = SiteSource {
            kind: site.info.kind,
            phase: site.info.phase,
            covered: site.covered,
        };
        let mut sums = [0.0f64; 8];
        let mut over = [false; 3];
        let mut noise_energy = 0.0;
        let mut wind_deg = 0.0;
        let mut level_idx = plan.levels.partition_point(|(from, _)| *from <= start);
        for k in 0..len {
            let t = start + k * 1000;
            while level_idx < plan.levels.len() && plan.levels[level_idx].0 <= t {
                level_idx += 1;
            }
            let level = if level_idx == 0 {
                dustwatch_protocol::Level::None
            } else {
                plan.levels[level_idx - 1].1
            };
            let sod = Plan::second_of_day(t, offset_s);
            let hour = f64::from(sod) / 3600.0;
            if site.sprinkle.contains(&sod) && site.info.kind != SiteKind::Reference {
                self.runs.push(Run {
                    start: t,
                    end: t + i64::from(site.sprinkle_s) * 1000,
                });
            }
            for i in 0..self.runs.len() {
                let r = self.runs[i];
                if r.start == t {
                    self.push_event(t, EventKind::SprinklerOn);
                }
                if r.end == t {
                    self.push_event(t, EventKind::SprinklerOff);
                }
            }
            let w = plan.background.at(t, hour);
            let working = site.working(&plan.rules, level, sod);
            let act = Activity {
                working,
                truck: working && site.truck(plan.seed, t / 1000),
            };
            let reduction = if self.runs.is_empty() {
                0.0
            } else {
                sprinkle_reduction(&self.runs, t, &w)
            };
            let inc = site_increment(src, act, &w, hour, level, reduction);
            let pm = [
                (w.pm25 * self.station_gain + inc.pm25),
                (w.pm10 * self.station_gain + inc.pm10),
                // TSP about 1.1-1.5 x PM10 (docs/domain.md, simulator figures, assumed 1.2 for the background).
                (w.pm10 * 1.2 * self.station_gain + inc.tsp),
            ];
            let hygro = [
                self.hygroscopic,
                0.6 * self.hygroscopic,
                0.4 * self.hygroscopic,
            ];
            let mut measured = [0.0; 3];
            for m in 0..3 {
                // TSP is derived by the monitor from the same optics; give it a wider cap.
                let sensor = if m == 2 {
                    LaserPm {
                        cap: 2.0 * self.sensor.cap,
                        ..self.sensor
                    }
                } else {
                    self.sensor
                };
                let s = sensor.measure(pm[m], w.rh_pct, hygro[m], &mut self.rng);
                measured[m] = s.value;
                over[m] |= s.over_range;
            }
            // Sensor faults act on what the sensor outputs (a stuck sensor repeats its output).
            if !self.sample_faults.is_empty() {
                self.sample_faults.apply(t, &mut measured);
            }
            for m in 0..3 {
                sums[m] += measured[m];
            }
            let level_db = energy_sum(
                ambient_noise(site.info.kind, hour) + 1.5 * gauss(&mut self.rng),
                inc.noise_dba,
            );
            noise_energy += 10f64.powf(level_db / 10.0);
            sums[3] += w.temp_c + 0.1 * gauss(&mut self.rng);
            sums[4] += (w.rh_pct + 0.5 * gauss(&mut self.rng)).clamp(0.0, 100.0);
            sums[5] += w.pressure_kpa + 0.01 * gauss(&mut self.rng);
            sums[6] += (w.wind_ms + 0.2 * gauss(&mut self.rng)).max(0.0);
            wind_deg = w.wind_deg;
        }
        // Forget runs whose effect has faded (6 h after they ended).
        self.runs.retain(|r| r.end + 6 * 3_600_000 > end);
        let n = len as f64;
        let mut r = Reading {
            ts: end,
            seq: self.seq,
            boot: self.boot,
            interval_s: self.cur_len,
            pm25: Some(round_to(sums[0] / n, 0.1)),
            pm10: Some(round_to(sums[1] / n, 0.1)),
            tsp: Some(round_to(sums[2] / n, 0.1)),
            // Reference stations measure air, not noise.
            noise_dba: (site.info.kind != SiteKind::Reference)
                .then(|| round_to(10.0 * (noise_energy / n).log10(), 0.1)),
            temp_c: Some(round_to(sums[3] / n, 0.1)),
            rh_pct: Some(round_to(sums[4] / n, 0.1)),
            pressure_kpa: Some(round_to(sums[5] / n, 0.01)),
            wind_ms: Some(round_to(sums[6] / n, 0.1)),
            wind_deg: Some(wind_deg.round()),
            flags: Default::default(),
        };
        for (m, name) in ["pm25", "pm10", "tsp"].iter().enumerate() {
            if over[m] {
                r.flags.insert((*name).to_string(), Flag::T);
            }
        }
        self.seq += 1;
        self.stats.generated.fetch_add(1, Ordering::Relaxed);
        shared.progress[self.plan.index].store(end, Ordering::Relaxed);

        // Fog cannons linked to the monitor start on a PM10 threshold.
        if let Some(limit) = site.auto_sprinkle_pm10 {
            let active = self.runs.iter().any(|x| x.start <= end && end < x.end);
            if r.pm10.unwrap_or(0.0) > limit && !active && end - self.last_auto > 3_600_000 {
                self.last_auto = end;
                self.runs.push(Run {
                    start: end,
                    end: end + i64::from(site.sprinkle_s) * 1000,
                });
            }
        }

        let mf = MessageFaults::at(&self.plan.faults, start);
        r.ts += mf.skew_ms;
        if mf.negative {
            r.pm25 = r.pm25.map(|v| -(v.abs().max(1.0)));
            r.pm10 = r.pm10.map(|v| -(v.abs().max(1.0)));
        }
        let mut payload = match self.plan.transport {
            Transport::Json => r.encode(),
            // Over MQTT the broker acknowledges; over TCP the platform's 9014 reply does.
            Transport::Hj212Mqtt => hj212_frame(&r, &self.plan.site.info.id, &self.plan.id, false),
            Transport::Hj212Tcp => hj212_frame(&r, &self.plan.site.info.id, &self.plan.id, true),
        };
        if mf.nan && self.plan.transport == Transport::Json {
            // serde_json writes NaN as null; printf firmware writes a bare NaN token.
            let text = String::from_utf8_lossy(&payload).into_owned();
            let pm25 = r
                .pm25
                .map(|v| format!("\"pm25\":{v:?}"))
                .unwrap_or_default();
            payload = text.replacen(&pm25, "\"pm25\":NaN", 1).into_bytes();
        }
        if mf.malformed {
            payload.truncate(payload.len() / 2);
        }
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

/// One reading as an HJ 212-2017 minute-data frame (CN 2051, µg/m³, China time), as a monitor
/// sends it; `reply` sets Flag bit 0 (ask for the 9014 data reply). MN and PW are the ones the
/// scenario's registry lists for the device.
fn hj212_frame(r: &dustwatch_protocol::Reading, site: &str, device: &str, reply: bool) -> Vec<u8> {
    use dustwatch_protocol::hj212;
    hj212::from_reading(
        r,
        hj212::Cn::Minute,
        &hj212_mn(site, device),
        HJ212_PASSWORD,
        39,
        &hj212::DeviceProfile::default(),
    )
    .map(|mut frame| {
        if reply {
            frame.flag = Some(hj212::FLAG_V2017 | hj212::FLAG_REPLY);
        }
        frame
    })
    .and_then(|frame| hj212::encode(&frame))
    // A reading the codec cannot express is sent as JSON on the hj212 topic: the aggregator
    // rejects it as a bad frame, which is what a broken bridge would cause.
    .unwrap_or_else(|_| r.encode())
}

async fn recv(conn: &mut Option<Link>) -> Option<NetEvent> {
    match conn {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}
