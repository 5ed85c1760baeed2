//! Forwarding stored readings to upstream platforms (a city or provincial platform) over HJ 212,
//! one task per `[[hj212.forward]]` target. Readings are queued in the store's own transaction
//! (`store::forward_queue`), so what is forwarded is exactly what was stored, re-encoded with the
//! protocol's HJ 212 encoder under the target's MN and PW. A target sends in queue order, one
//! frame at a time; its cursor moves only once a frame is written (and, when a reply is wanted,
//! acknowledged with a 9014), so after a lost connection or a restart the same frame is sent
//! again and nothing is skipped. Backlog and errors are in `/metrics`.

pub mod config;
mod link;
mod queue;

pub use config::ForwardConfig;

use crate::metrics::{Metrics, TargetCounters};
use crate::store::StoreError;
use dustwatch_protocol::hj212::{self, Cn, DeviceProfile, FLAG_REPLY, FLAG_V2017};
use dustwatch_protocol::{DeviceInfo, Reading};
use link::Link;
use queue::{Queue, Queued};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Queued readings read at a time.
const BATCH: usize = 200;
/// How often an idle target looks for new readings.
const POLL: Duration = Duration::from_millis(200);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, Error)]
pub enum ForwardError {
    #[error("[[hj212.forward]] `{target}`: {why}")]
    Config { target: String, why: String },
    #[error("[[hj212.forward]] two targets are named `{0}`")]
    DuplicateName(String),
    #[error("{0}")]
    Io(String),
    #[error("no 9014 reply to QN {qn} within {after_ms} ms")]
    NoReply { qn: String, after_ms: u64 },
    #[error("forwarding queue: {0}")]
    Store(#[from] StoreError),
}

/// The running targets.
pub struct Forwarder {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Check every target (names unique), before the store starts queueing.
pub fn validate(targets: &[ForwardConfig]) -> Result<(), ForwardError> {
    let mut names: Vec<&str> = Vec::new();
    for t in targets {
        t.validate()?;
        if names.contains(&t.name()) {
            return Err(ForwardError::DuplicateName(t.name().to_string()));
        }
        names.push(t.name());
    }
    Ok(())
}

/// Start one task per target on the store under `data_dir` (open, with its forwarding queue on).
/// `devices` gives each (site, device) its MN.
pub fn start(
    targets: &[ForwardConfig],
    devices: &[DeviceInfo],
    data_dir: &Path,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Forwarder, ForwardError> {
    validate(targets)?;
    let mns: Arc<HashMap<(String, String), String>> = Arc::new(
        devices
            .iter()
            .filter_map(|d| Some(((d.site.clone(), d.id.clone()), d.mn.clone()?)))
            .collect(),
    );
    let mut queues = Vec::new();
    for t in targets {
        queues.push(Queue::open(data_dir, t.name())?);
    }
    if let Some(q) = queues.first() {
        let names: Vec<String> = targets.iter().map(|t| t.name().to_string()).collect();
        q.keep_only(&names)?;
    }
    let tasks = targets
        .iter()
        .zip(queues)
        .map(|(t, q)| {
            tracing::info!(target = t.name(), address = %t.address, reply = t.reply, "forwarding HJ 212 upstream");
            let counters = metrics.hj212_forward.target(t.name());
            let target = Target {
                config: t.clone(),
                mns: mns.clone(),
                counters,
            };
            tokio::spawn(target.run(q, shutdown.clone()))
        })
        .collect();
    Ok(Forwarder { tasks })
}

/// The data command a stored reading goes up as: hour and day data by their interval, minute
/// data as HJ 212 minute frames were keyed on the way in (`boot` 0, `seq` ending in 5), the rest
/// as real-time data.
pub fn cn_of(r: &Reading) -> Cn {
    match r.interval_s {
        3_600 => Cn::Hour,
        86_400 => Cn::Day,
        60 if r.boot == 0 && r.seq % 10 == 5 => Cn::Minute,
        _ => Cn::RealTime,
    }
}

struct Target {
    config: ForwardConfig,
    mns: Arc<HashMap<(String, String), String>>,
    counters: Arc<TargetCounters>,
}

/// What to do with one queued reading.
enum Plan {
    Skip,
    Send { packets: Vec<Vec<u8>>, qn: String },
}

impl Target {
    /// The frame for a queued reading, or why this target does not take it.
    fn plan(&self, q: &Queued) -> Plan {
        let c = &self.config;
        let Some(r) = &q.reading else {
            return Plan::Skip;
        };
        let device_mn = self.mns.get(&(q.site.clone(), q.device.clone()));
        let wanted = (c.sites.is_empty() || c.sites.contains(&q.site))
            && (c.mns.is_empty() || device_mn.is_some_and(|mn| c.mns.contains(mn)));
        let cn = cn_of(r);
        let Some(mn) = c.mn.as_ref().or(device_mn).filter(|_| wanted) else {
            return Plan::Skip;
        };
        if !c.cns.contains(&cn.code()) {
            return Plan::Skip;
        }
        let frame = hj212::from_reading(r, cn, mn, &c.pw, c.st, &DeviceProfile::default())
            .map(|mut f| {
                f.flag = Some(FLAG_V2017 | if c.reply { FLAG_REPLY } else { 0 });
                f
            })
            .and_then(|f| Ok((hj212::encode_packets(&f)?, f.qn)));
        match frame {
            Ok((packets, qn)) => Plan::Send { packets, qn },
            Err(e) => {
                // A stored reading passed the contract's checks; this is a bug, not input.
                tracing::error!(error = %e, site = %q.site, device = %q.device, "cannot encode a stored reading; skipped");
                Plan::Skip
            }
        }
    }

    async fn run(self, queue: Queue, shutdown: CancellationToken) {
        let queue = Arc::new(Mutex::new(queue));
        let name = self.config.name().to_string();
        let mut cursor = loop {
            match blocking(&queue, |q| q.cursor()).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(target = %name, error = %e, "cannot read the forwarding cursor; retrying");
                    if !pause(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                }
            }
        };
        let max_backoff = Duration::from_secs(self.config.max_backoff_s.max(1));
        let reply_timeout = Duration::from_millis(self.config.reply_timeout_ms);
        let max_backlog = i64::try_from(self.config.max_backlog).unwrap_or(i64::MAX);
        let mut link: Option<Link> = None;
        let mut backoff = FIRST_BACKOFF;
        'outer: while !shutdown.is_cancelled() {
            let read = blocking(&queue, move |q| {
                Ok((q.backlog(cursor)?, q.next(cursor, BATCH)?))
            })
            .await;
            let (backlog, batch) = match read {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(target = %name, error = %e, "reading the forwarding queue failed; retrying");
                    if !pause(Duration::from_secs(1), &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            self.counters.backlog.store(backlog, Relaxed);
            if backlog > max_backlog {
                // Bounded disk: give up the oldest beyond the cap.
                let skip = backlog - max_backlog;
                self.counters.dropped.fetch_add(skip as u64, Relaxed);
                tracing::warn!(target = %name, skipped = skip, "forwarding backlog over max_backlog; oldest readings given up");
                cursor += skip;
                let to = cursor;
                if let Err(e) = blocking(&queue, move |q| q.advance(to)).await {
                    tracing::error!(target = %name, error = %e, "advancing the forwarding cursor failed");
                }
                continue;
            }
            if batch.is_empty() {
                if !pause(POLL, &shutdown).await {
                    break;
                }
                continue;
            }
            for item in batch {
                if let Plan::Send { packets, qn } = self.plan(&item) {
                    loop {
                        if link.is_none() {
                            match Link::connect(&self.config.address).await {
                                Ok(l) => {
                                    tracing::info!(target = %name, "connected upstream");
                                    self.counters.connected.store(1, Relaxed);
                                    link = Some(l);
                                }
                                Err(e) => {
                                    self.fail(&name, &e, &queue, cursor).await;
                                    if !pause(backoff, &shutdown).await {
                                        break 'outer;
                                    }
                                    backoff = (backoff * 2).min(max_backoff);
                                    continue;
                                }
                            }
                        }
                        let Some(l) = link.as_mut() else { continue };
                        let sent = tokio::select! {
                            r = l.send(&packets, &qn, self.config.reply, reply_timeout) => r,
                            _ = shutdown.cancelled() => break 'outer,
                        };
                        match sent {
                            Ok(()) => {
                                self.counters.sent.fetch_add(1, Relaxed);
                                backoff = FIRST_BACKOFF;
                                break;
                            }
                            Err(e) => {
                                // Over a new connection, the same frame again.
                                link = None;
                                self.counters.connected.store(0, Relaxed);
                                self.fail(&name, &e, &queue, cursor).await;
                                if !pause(backoff, &shutdown).await {
                                    break 'outer;
                                }
                                backoff = (backoff * 2).min(max_backoff);
                            }
                        }
                    }
                } else {
                    self.counters.skipped.fetch_add(1, Relaxed);
                }
                cursor = item.id;
                let to = cursor;
                while let Err(e) = blocking(&queue, move |q| q.advance(to)).await {
                    // Sent but not recorded: if we stop now it is sent once more on restart.
                    tracing::error!(target = %name, error = %e, "advancing the forwarding cursor failed; retrying");
                    if !pause(Duration::from_secs(1), &shutdown).await {
                        break 'outer;
                    }
                }
                self.counters.backlog.fetch_sub(1, Relaxed);
            }
        }
        self.counters.connected.store(0, Relaxed);
        tracing::info!(target = %name, cursor, "forwarding stopped");
    }

    /// Count a failure, log it (the first loudly), and refresh the backlog gauge: while the
    /// platform is down the queue keeps growing behind the frame being retried.
    async fn fail(&self, name: &str, e: &ForwardError, queue: &Arc<Mutex<Queue>>, cursor: i64) {
        let backlog = blocking(queue, move |q| q.backlog(cursor)).await.ok();
        if let Some(b) = backlog {
            self.counters.backlog.store(b, Relaxed);
        }
        let first = self.counters.errors.fetch_add(1, Relaxed) == 0;
        if first {
            tracing::warn!(target = %name, error = %e, ?backlog, "forwarding failed; the backlog waits in SQLite, retrying with backoff");
        } else {
            tracing::debug!(target = %name, error = %e, ?backlog, "forwarding failed again");
        }
    }
}

/// Run a blocking queue call off the async workers.
async fn blocking<T: Send + 'static>(
    queue: &Arc<Mutex<Queue>>,
    f: impl FnOnce(&mut Queue) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let queue = queue.clone();
    tokio::task::spawn_blocking(move || {
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut q)
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("forwarding task: {e}"))))
}

/// Sleep, or return false early when shutdown is requested.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::EventTime;

    #[test]
    fn cn_follows_the_interval_and_the_hj212_key() {
        let r = |interval_s, boot, seq| Reading {
            interval_s,
            boot,
            seq,
            ..Reading::default()
        };
        assert_eq!(cn_of(&r(3_600, 0, 201_701_021_500_006)), Cn::Hour);
        assert_eq!(cn_of(&r(86_400, 3, 1)), Cn::Day);
        assert_eq!(cn_of(&r(60, 0, 201_701_021_500_005)), Cn::Minute);
        assert_eq!(cn_of(&r(60, 0, 201_701_021_500_001)), Cn::RealTime);
        assert_eq!(
            cn_of(&r(60, 2, 15)),
            Cn::RealTime,
            "a JSON device's reading"
        );
    }

    fn target(extra: &str) -> Target {
        let config: ForwardConfig =
            toml::from_str(&format!("address = \"127.0.0.1:1\"\npw = \"up\"\n{extra}"))
                .expect("config");
        config.validate().expect("valid");
        Target {
            config,
            mns: Arc::new(HashMap::from([(
                ("s1".into(), "d1".into()),
                "MN-D1".into(),
            )])),
            counters: Arc::default(),
        }
    }

    fn queued(site: &str, device: &str, interval_s: u32) -> Queued {
        Queued {
            id: 1,
            site: site.into(),
            device: device.into(),
            reading: Some(Reading {
                ts: EventTime(1_483_340_400_000),
                interval_s,
                boot: 1,
                seq: 1,
                pm10: Some(80.0),
                no2: Some(41.0),
                ..Reading::default()
            }),
        }
    }

    fn sent(t: &Target, q: &Queued) -> Option<hj212::Frame> {
        match t.plan(q) {
            Plan::Send { packets, .. } => Some(hj212::decode(&packets[0]).expect("a valid frame")),
            Plan::Skip => None,
        }
    }

    #[test]
    fn targets_pick_by_site_mn_and_cn_and_send_under_their_mn() {
        let all = target("reply = true");
        let f = sent(&all, &queued("s1", "d1", 60)).expect("sent");
        assert_eq!(
            (f.mn.as_str(), f.pw.as_str(), f.cn, f.st),
            ("MN-D1", "up", Cn::RealTime, 39)
        );
        assert_eq!(f.flag, Some(FLAG_V2017 | FLAG_REPLY));
        assert!(f.cp.factor(hj212::Factor::No2).is_some(), "gases go up too");
        assert!(
            sent(&all, &queued("s2", "json", 60)).is_none(),
            "no MN to send under"
        );
        let renamed = target("mn = \"CITY1\"\nst = 22");
        let f = sent(&renamed, &queued("s2", "json", 60)).expect("sent under the target's MN");
        assert_eq!(
            (f.mn.as_str(), f.st, f.flag),
            ("CITY1", 22, Some(FLAG_V2017))
        );
        let site = target("mn = \"CITY1\"\nsites = [\"s2\"]");
        assert!(sent(&site, &queued("s1", "d1", 60)).is_none());
        assert!(sent(&site, &queued("s2", "x", 60)).is_some());
        let device = target("mns = [\"MN-D1\"]");
        assert!(sent(&device, &queued("s1", "d1", 60)).is_some());
        assert!(sent(&device, &queued("s1", "d2", 60)).is_none());
        let hourly = target("cns = [2061]");
        assert!(sent(&hourly, &queued("s1", "d1", 60)).is_none());
        assert_eq!(
            sent(&hourly, &queued("s1", "d1", 3_600)).map(|f| f.cn),
            Some(Cn::Hour)
        );
        let gone = Queued {
            reading: None,
            ..queued("s1", "d1", 60)
        };
        assert!(
            sent(&all, &gone).is_none(),
            "removed by retention before it was sent"
        );
    }
}
