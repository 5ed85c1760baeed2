//! sensors-sim: a fleet of simulated construction-site dust monitors publishing over MQTT.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sensors_sim::{Scenario, Sim, SimOptions, Speed};
//! let scenario = Scenario::load("huiji-red-alert")?;
//! let registry = scenario.registry(); // sites for the aggregator
//! let options = SimOptions { port: 1883, speed: Speed::Max, duration: Some(std::time::Duration::from_secs(3600)), ..Default::default() };
//! let summary = Sim::new(scenario, options).run(tokio_util::sync::CancellationToken::new()).await?;
//! # let _ = (registry, summary); Ok(()) }
//! ```
//!
//! Layout: [`device`] is the firmware loop, [`physics`] the air and the site, [`sensor`] the
//! instruments, [`faults`] what breaks, [`scenario`] the TOML files, [`truth`] the ground truth,
//! [`clock`] simulated time, [`city`] the warning-level feed, [`net`] one MQTT connection,
//! [`hj212_tcp`] one HJ 212 TCP connection to a platform, [`transport`] the choice between them,
//! `lockstep` the virtual-time barrier of `--speed max`, [`fd_limit`] the open-file limit a
//! large fleet needs.

pub mod city;
pub mod clock;
mod commands;
pub mod device;
pub mod faults;
pub mod fd_limit;
pub mod hj212_tcp;
mod lockstep;
pub mod net;
pub mod physics;
pub mod scenario;
pub mod sensor;
pub mod transport;
pub mod truth;

pub use clock::{Speed, TimeError};
pub use scenario::{Overrides, Plan, Scenario, ScenarioError};
pub use truth::{Truth, TruthError, TruthRecord};

use chrono::{DateTime, Utc};
use clock::SimClock;
use dustwatch_mqtt::{Credentials, TlsError, TlsSettings};
use dustwatch_protocol::TopicRoot;
use net::Endpoint;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub host: String,
    pub port: u16,
    /// Login of every connection, unless `credentials` has one of its own. Default none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-device and office logins (the credentials file `dustwatch broker-config` writes):
    /// each device logs in as itself, the city feed as the office. Default none.
    pub credentials: Option<Arc<Credentials>>,
    /// TLS (`mqtts://`) with these settings. Default none: plain TCP.
    pub tls: Option<TlsSettings>,
    pub topic_root: TopicRoot,
    /// Default 60 simulated seconds per real second.
    pub speed: Speed,
    /// Simulated start; default the scenario's.
    pub start: Option<DateTime<Utc>>,
    /// Resume the scenario here: the clock begins at this time (within start..end) and the
    /// story stays anchored to the start, so a fleet stopped at some point can go on from it.
    /// Devices come up with a new boot counter. Default none: begin at the start.
    pub resume_at: Option<DateTime<Utc>>,
    /// Simulated duration; default the scenario's (none = until cancelled).
    pub duration: Option<Duration>,
    /// Same seed and options, same payloads. Default 1.
    pub seed: u64,
    /// Write the ground truth (JSON) here at the end of the run.
    pub truth: Option<PathBuf>,
    /// `steady`: number of devices (default from the scenario).
    pub devices: Option<u32>,
    /// Readings per second per device (sets the interval to `1 / rate` s, at least 1 s).
    pub rate: Option<f64>,
    /// Prefix of MQTT client ids, so two simulators can share a broker. Default `sim`.
    pub client_prefix: String,
    /// Unacknowledged publishes per device connection. Default 16.
    pub inflight: u16,
    /// Reconnect backoff bounds (real time). Default 250 ms .. 30 s.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// MQTT keep-alive (real time). Default 30 s.
    pub keep_alive: Duration,
    /// Spread first connections over this much real time (avoids a connect storm). Default 1 s.
    pub connect_spread: Duration,
    /// TCP connect plus CONNACK, once an attempt starts (real time). Default 30 s: a broker
    /// accepting thousands of devices at once answers late, not never.
    pub connect_timeout: Duration,
    /// Connection attempts in progress at once, over all devices. Default 256.
    pub connect_limit: usize,
    /// `host:port` of the HJ 212 platform the scenario's `hj212_tcp` devices connect to. Default
    /// none: a scenario with such devices does not start ([`SimError::NoPlatform`]).
    pub hj212_platform: Option<String>,
    /// How long an HJ 212 TCP device waits for the 9014 reply before sending a frame again
    /// (real time; HJ 212 OverTime). Default 5 s.
    pub hj212_reply_timeout: Duration,
    /// Times a frame is sent again without a reply before it is given up (HJ 212 ReCount).
    /// Default 3.
    pub hj212_retries: u32,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            host: "127.0.0.1".into(),
            port: 1883,
            username: None,
            password: None,
            credentials: None,
            tls: None,
            topic_root: TopicRoot::default(),
            speed: Speed::Factor(60.0),
            start: None,
            resume_at: None,
            duration: None,
            seed: 1,
            truth: None,
            devices: None,
            rate: None,
            client_prefix: "sim".into(),
            inflight: 16,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            connect_spread: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(30),
            connect_limit: net::DEFAULT_CONNECT_LIMIT,
            hj212_platform: None,
            hj212_reply_timeout: Duration::from_secs(5),
            hj212_retries: 3,
        }
    }
}

impl SimOptions {
    /// The scenario overrides these options ask for.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            start_ms: self.start.map(|s| s.timestamp_millis()),
            resume_ms: self.resume_at.map(|s| s.timestamp_millis()),
            duration: self.duration,
            devices: self.devices,
            rate: self.rate,
            seed: self.seed,
        }
    }
}

/// Counters of a running simulation (all monotonic except the gauges `buffered`, `connected`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Readings produced by the devices.
    pub generated: AtomicU64,
    /// Publish packets written (readings, events, statuses; retransmissions count again).
    pub published: AtomicU64,
    /// Reading messages acknowledged by the broker (PUBACK).
    pub acked: AtomicU64,
    /// Readings waiting in store-and-forward buffers or in flight (gauge).
    pub buffered: AtomicU64,
    /// Readings dropped because a buffer was full.
    pub dropped: AtomicU64,
    /// HJ 212 TCP readings the platform never answered (no 9014 after every retry, or refused):
    /// given up, not acknowledged.
    pub unanswered: AtomicU64,
    pub events: AtomicU64,
    pub commands: AtomicU64,
    pub bad_commands: AtomicU64,
    /// Devices connected now (gauge).
    pub connected: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    /// Connection attempts that failed before CONNACK.
    pub connect_failures: AtomicU64,
    pub city_levels: AtomicU64,
}

impl Stats {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    /// The counters a watcher follows (a progress line, a benchmark driving several simulator
    /// processes), read at one moment.
    pub fn snapshot(&self) -> Progress {
        Progress {
            connected: Self::get(&self.connected),
            connect_failures: Self::get(&self.connect_failures),
            generated: Self::get(&self.generated),
            published: Self::get(&self.published),
            acked: Self::get(&self.acked),
            buffered: Self::get(&self.buffered),
            dropped: Self::get(&self.dropped),
        }
    }
}

/// A run's counters at one moment ([`Stats::snapshot`]); `sensors-sim --progress json` prints one
/// per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Progress {
    pub connected: u64,
    pub connect_failures: u64,
    pub generated: u64,
    pub published: u64,
    pub acked: u64,
    pub buffered: u64,
    pub dropped: u64,
}

/// What a finished run did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub devices: usize,
    pub start_ms: i64,
    /// Simulated end reached (the duration's end, or the furthest device when cancelled).
    pub end_ms: i64,
    pub generated: u64,
    pub published: u64,
    pub acked: u64,
    pub dropped: u64,
    /// HJ 212 TCP readings given up without a reply.
    pub unanswered: u64,
    /// Readings still buffered when the run stopped (0 when it ran to its end).
    pub unsent: u64,
    pub events: u64,
    pub reconnects: u64,
    pub city_levels: u64,
    pub elapsed_s: f64,
    /// Acknowledged readings per real second.
    pub rate: f64,
    pub truth_records: Option<usize>,
}

/// What a person reads at the end of a run: one line per kind of figure.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        };
        write!(
            f,
            "{} devices, simulated {} .. {}\n  readings generated {}, acknowledged {}, \
             dropped {}, unanswered {}, unsent {}\n  events {}, publishes {}, reconnects {}, \
             city levels {}\n  {:.1} s real, {:.0} readings/s",
            self.devices,
            time(self.start_ms),
            time(self.end_ms),
            self.generated,
            self.acked,
            self.dropped,
            self.unanswered,
            self.unsent,
            self.events,
            self.published,
            self.reconnects,
            self.city_levels,
            self.elapsed_s,
            self.rate,
        )?;
        if let Some(n) = self.truth_records {
            write!(f, "\n  truth: {n} records")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum SimError {
    #[error("scenario {0}")]
    Plan(String),
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error("MQTT over TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("scenario {scenario} has {count} HJ 212 TCP device(s) ({first} ...) but no platform to send to; pass --hj212-platform HOST:PORT (SimOptions::hj212_platform)")]
    NoPlatform {
        scenario: String,
        count: usize,
        first: String,
    },
}

/// Everything the devices of one run share (read-only but for atomics).
pub(crate) struct Shared {
    pub plan: Plan,
    pub clock: SimClock,
    pub endpoint: Endpoint,
    /// Where `hj212_tcp` devices connect (checked present when there are any).
    pub platform: Option<hj212_tcp::Platform>,
    pub root: TopicRoot,
    pub client_prefix: String,
    pub stats: Arc<Stats>,
    /// Simulated time each device has produced up to (the --speed max watermark).
    pub progress: Vec<AtomicI64>,
    /// The virtual-time barrier of `--speed max`: devices are participants `0..n`, the city's
    /// level feed is participant `n`.
    pub lockstep: lockstep::Lockstep,
    pub window: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_spread: Duration,
}

impl Shared {
    fn stagger(&self, index: usize) -> Duration {
        let n = self.progress.len().max(1) as f64;
        self.connect_spread.mul_f64(index as f64 / n)
    }
}

/// A fleet run.
pub struct Sim {
    scenario: Scenario,
    options: SimOptions,
    stats: Arc<Stats>,
}

impl Sim {
    pub fn new(scenario: Scenario, options: SimOptions) -> Sim {
        Sim {
            scenario,
            options,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Live counters; read them while `run` is going.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The scenario resolved with these options (sites, devices, span).
    pub fn plan(&self) -> Result<Plan, SimError> {
        self.scenario
            .plan(&self.options.overrides())
            .map_err(SimError::Plan)
    }

    /// Run until the duration is published and acknowledged, or until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Summary, SimError> {
        let plan = self.plan()?;
        let o = &self.options;
        let tcp_devices: Vec<_> = plan
            .devices
            .iter()
            .filter(|d| d.transport == scenario::Transport::Hj212Tcp)
            .collect();
        let platform = match (&o.hj212_platform, tcp_devices.first()) {
            (None, Some(first)) => {
                return Err(SimError::NoPlatform {
                    scenario: plan.name.clone(),
                    count: tcp_devices.len(),
                    first: format!("{}/{}", first.site.info.id, first.id),
                })
            }
            (Some(addr), Some(_)) => {
                if let Err(e) = tokio::net::TcpStream::connect(addr.as_str()).await {
                    tracing::error!(
                        platform = %addr,
                        error = %e,
                        "cannot reach the HJ 212 platform; its devices keep retrying with backoff"
                    );
                }
                Some(hj212_tcp::Platform {
                    addr: addr.clone(),
                    window: usize::from(o.inflight.max(1)),
                    reply_timeout: o.hj212_reply_timeout,
                    retries: o.hj212_retries,
                    connect_timeout: Duration::from_secs(10),
                })
            }
            (_, None) => None,
        };
        if let Err(e) = tokio::net::TcpStream::connect((o.host.as_str(), o.port)).await {
            tracing::error!(
                broker = %format!("{}:{}", o.host, o.port),
                error = %e,
                "cannot reach the MQTT broker; devices keep retrying with backoff"
            );
        }
        let started = std::time::Instant::now();
        let n = plan.devices.len();
        let shared = Arc::new(Shared {
            clock: SimClock::new(plan.begin_ms, o.speed),
            endpoint: Endpoint {
                host: o.host.clone(),
                port: o.port,
                username: o.username.clone(),
                password: o.password.clone(),
                credentials: o.credentials.clone(),
                tls: o.tls.as_ref().map(TlsSettings::client_config).transpose()?,
                inflight: o.inflight,
                keep_alive: o.keep_alive,
                connect_timeout: o.connect_timeout,
                connect_limit: Arc::new(tokio::sync::Semaphore::new(o.connect_limit.max(1))),
            },
            platform,
            root: o.topic_root.clone(),
            client_prefix: o.client_prefix.clone(),
            stats: self.stats.clone(),
            progress: (0..n).map(|_| AtomicI64::new(plan.begin_ms)).collect(),
            lockstep: lockstep::Lockstep::new(n + 1, plan.begin_ms),
            window: usize::from(o.inflight.max(1)),
            backoff_min: o.backoff_min,
            backoff_max: o.backoff_max.max(o.backoff_min),
            connect_spread: o.connect_spread,
            plan,
        });
        tracing::info!(
            scenario = %shared.plan.name,
            devices = n,
            speed = %o.speed,
            "simulation starting"
        );
        let mut tasks = tokio::task::JoinSet::new();
        for dev in shared.plan.devices.clone() {
            let d = device::Device::new(dev, shared.clone());
            tasks.spawn(d.run(shutdown.clone()));
        }
        let city = tokio::spawn(city::run(shared.clone(), shutdown.clone()));
        let mut unsent = 0u64;
        while let Some(r) = tasks.join_next().await {
            if let Ok(report) = r {
                unsent += report.unsent as u64;
            }
        }
        let _ = city.await;
        let plan = &shared.plan;
        let end_ms = plan.end_ms.unwrap_or_else(|| {
            shared
                .progress
                .iter()
                .map(|p| p.load(Ordering::Relaxed))
                .filter(|t| *t != i64::MAX)
                .max()
                .unwrap_or(plan.begin_ms)
        });
        let truth_records = match &o.truth {
            Some(path) => {
                let t = truth::compute(plan, end_ms);
                t.write(path)?;
                Some(t.records.len())
            }
            None => None,
        };
        let s = &self.stats;
        let elapsed_s = started.elapsed().as_secs_f64();
        let acked = Stats::get(&s.acked);
        Ok(Summary {
            scenario: plan.name.clone(),
            devices: n,
            start_ms: plan.begin_ms,
            end_ms,
            generated: Stats::get(&s.generated),
            published: Stats::get(&s.published),
            acked,
            dropped: Stats::get(&s.dropped),
            unanswered: Stats::get(&s.unanswered),
            unsent,
            events: Stats::get(&s.events),
            reconnects: Stats::get(&s.connects).saturating_sub(n as u64),
            city_levels: Stats::get(&s.city_levels),
            elapsed_s,
            rate: acked as f64 / elapsed_s.max(1e-9),
            truth_records,
        })
    }
}
