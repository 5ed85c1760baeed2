//! Commands to devices: stored, then published QoS 1 on the device's `cmd` topic with an id;
//! the device's answer on its `reply` topic comes back through ingest (the store writer records
//! it); commands left unanswered past their deadline are timed out here, by the wall clock
//! (a command is a thing of the office's time, not of event time). Each command also carries
//! the office's clock when it was sent (`office_ts`: the data's clock, as orders and notices
//! are stamped), which places it in the daily report of the day the office acted.

pub mod config;
pub mod stop_work;

use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::store::commands::{CommandLog, CommandRow, NewCommand};
use crate::store::StoreError;
use dustwatch_protocol::time::DAY;
use dustwatch_protocol::{Command, CommandId, Envelope};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use config::CommandsConfig;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// Sends commands and keeps their record; cheap to clone.
#[derive(Clone)]
pub struct Commands {
    store: Arc<dyn CommandLog>,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    timeout_ms: i64,
    /// Where answers to notices' commands become receipts (wired once the store is open).
    receipts: Arc<OnceLock<stop_work::Receipts>>,
}

impl Commands {
    /// Keep commands in `store` and start the task that times out unanswered commands.
    pub fn start(
        config: &CommandsConfig,
        store: Arc<dyn CommandLog>,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(Commands, tokio::task::JoinHandle<()>), CommandError> {
        let commands = Commands {
            store,
            publisher,
            metrics,
            timeout_ms: i64::try_from(config.timeout_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            receipts: Arc::new(OnceLock::new()),
        };
        let keep_ms = i64::from(config.keep_days) * DAY;
        let sweeper = commands.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ticks: u64 = 0;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                ticks += 1;
                let s = sweeper.clone();
                let prune = ticks % 3600 == 1;
                let done = tokio::task::spawn_blocking(move || {
                    let now = chrono::Utc::now().timestamp_millis();
                    let expired = {
                        let store = s.store.as_ref();
                        let expired = store.expire(now)?;
                        if prune {
                            store.prune(now - keep_ms)?;
                        }
                        expired
                    };
                    s.pass_on_receipts()?;
                    Ok::<_, CommandError>(expired)
                })
                .await;
                match done {
                    Ok(Ok(n)) => {
                        if n > 0 {
                            tracing::info!(commands = n, "commands timed out unanswered");
                        }
                        sweeper
                            .metrics
                            .acting
                            .commands_timed_out
                            .fetch_add(n, Relaxed);
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not time out commands"),
                    Err(e) => tracing::error!(error = %e, "command sweeper failed"),
                }
            }
        });
        Ok((commands, task))
    }

    /// Store and publish a command to `site`/`device`, sent at `office_ts` on the office's
    /// clock. Blocking (the store): call it off the async workers. The row is stored before the
    /// publish, so a fast answer always finds it.
    pub fn send(
        &self,
        site: &str,
        device: &str,
        command: Command,
        by: &str,
        office_ts: i64,
    ) -> Result<CommandRow, CommandError> {
        dustwatch_protocol::topic::check_site_id(site)
            .map_err(|e| CommandError::Invalid(format!("site: {e}")))?;
        if !dustwatch_protocol::topic::is_valid_id(device) {
            return Err(CommandError::Invalid(format!(
                "device `{device}` is not 1-64 characters of [A-Za-z0-9_-]"
            )));
        }
        // The device checks these too; refusing here tells the office at once.
        let checked = Command::decode(&serde_json::to_vec(&command).unwrap_or_default())
            .map_err(|r| CommandError::Invalid(r.detail))?;
        let id = new_id()?;
        let envelope = Envelope {
            id: Some(id.clone()),
            command: checked,
        };
        let json = serde_json::to_value(&envelope.command)
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        let now = chrono::Utc::now().timestamp_millis();
        let store = self.store.as_ref();
        store.insert(&NewCommand {
            id: id.as_str(),
            site,
            device,
            command: &json,
            by,
            sent_ms: now,
            deadline_ms: now.saturating_add(self.timeout_ms),
            office_ts,
        })?;
        let topic = self.publisher.root().cmd(site, device);
        if self.publisher.publish(topic, envelope.encode(), false) {
            self.metrics.acting.commands_sent.fetch_add(1, Relaxed);
            tracing::info!(site, device, id = %id, by, "command sent");
        } else {
            self.metrics.acting.commands_not_sent.fetch_add(1, Relaxed);
            store.not_sent(id.as_str(), "the aggregator's publish queue is full")?;
        }
        store.get(id.as_str())?.ok_or_else(|| {
            CommandError::Store(StoreError::Corrupt(format!("command {id} vanished")))
        })
    }

    /// A site's commands, newest first. Blocking.
    pub fn list(&self, site: &str, limit: u32) -> Result<Vec<CommandRow>, CommandError> {
        Ok(self.store.list(site, limit)?)
    }

    /// How many commands of each kind sent in [from, to) of the office's clock ended in each
    /// state. Blocking.
    pub fn counts_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<crate::report::CommandCounts, CommandError> {
        Ok(self.store.counts_between(from, to)?)
    }

    /// One command. Blocking.
    pub fn get(&self, id: &str) -> Result<Option<CommandRow>, CommandError> {
        Ok(self.store.get(id)?)
    }
}

/// Now on the office's clock: the data's (the fleet clock, event time), or the wall clock
/// before any data came. Orders, re-inspections, notices and commands are stamped with it
/// because the rules close alerts, and the daily report groups its day, in event time: a
/// re-inspection "from now on" must mean data from now on. For a live fleet this trails the
/// wall clock by about one reporting interval; for a replayed or simulated fleet it is the
/// only clock on which the office's actions and the data line up.
pub fn office_now(hot: &crate::store::hot::Hot) -> i64 {
    hot.fleet_clock()
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
}

/// 128 random bits as 32 hex digits.
fn new_id() -> Result<CommandId, CommandError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(CommandError::Random)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(CommandId::try_from(hex).expect("32 hex digits are a valid command id"))
}
