//! Export to a long-term store (InfluxDB 2, or anything taking the v2 write API) through the
//! outbox. SQLite stays the source of truth: the exporter reads the outbox in id order from a
//! persisted cursor, writes batches of line protocol, and only then advances the cursor (and
//! prunes what is done). When the server is down or slow, writes are retried with backoff while
//! the backlog waits in SQLite; ingestion never waits for the exporter. A restart resumes at the
//! cursor; a batch written again after a crash lands on the same series and timestamps, which
//! InfluxDB overwrites (idempotent).

pub mod config;
pub mod influx;
pub mod line;
mod pg_source;
pub mod source;

pub use config::InfluxConfig;
pub use influx::InfluxSink;
pub use pg_source::PgOutboxSource;
pub use source::{Batch, Cursor, ExportSource, OutboxSource};

use crate::metrics::Metrics;
use crate::store::StoreError;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// How often a lasting outage is logged again (warn), with the backlog.
const STILL_FAILING_EVERY: Duration = Duration::from_secs(60);

/// Cursor name of the InfluxDB exporter in `export_cursor`.
pub const CURSOR: &str = "influx";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("[influx] url `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("[influx] {0}")]
    Setting(String),
    #[error("InfluxDB client: {0}")]
    Client(String),
    #[error("export outbox: {0}")]
    Store(#[from] StoreError),
}

/// Why a write failed.
#[derive(Debug, Error)]
pub enum SinkError {
    /// Not reachable, timed out, overloaded, unauthorized: retried with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// The server refused the lines themselves (400, 413, 422): retrying cannot help.
    #[error("server refused the lines ({status}): {text}")]
    Refused { status: u16, text: String },
}

impl SinkError {
    /// Classify an HTTP error status.
    pub fn from_status(status: u16, text: String) -> SinkError {
        match status {
            400 | 413 | 422 => SinkError::Refused { status, text },
            _ => SinkError::Unavailable(format!("HTTP {status}: {text}")),
        }
    }
}

/// Where exported lines go. One method, so the client can be swapped in one file
/// (`influx.rs`), and tests can count what arrives.
pub trait LineSink: Send + Sync + 'static {
    /// Write newline-separated line protocol with millisecond timestamps.
    fn write(&self, body: String) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Pacing of the export loop.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl From<&InfluxConfig> for Pacing {
    fn from(c: &InfluxConfig) -> Pacing {
        Pacing {
            batch_size: c.batch_size,
            flush_interval: Duration::from_millis(c.flush_interval_ms),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(c.max_backoff_s.max(1)),
        }
    }
}

/// A running exporter.
pub struct Exporter {
    pub task: tokio::task::JoinHandle<()>,
}

/// Start the InfluxDB exporter on the SQLite store under `data_dir` (the store must be open,
/// with its outbox on). Fails fast on a bad `[influx]` section.
pub fn start(
    config: &InfluxConfig,
    data_dir: &Path,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Exporter, ExportError> {
    let source = OutboxSource::open(data_dir, CURSOR)?;
    start_with(config, Box::new(source), metrics, shutdown)
}

/// Start the InfluxDB exporter on any store's export source.
pub fn start_with(
    config: &InfluxConfig,
    source: Box<dyn ExportSource>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Exporter, ExportError> {
    let sink = InfluxSink::new(config)?;
    metrics.export_enabled.store(1, Relaxed);
    tracing::info!(url = %config.url, bucket = %config.bucket, batch_size = config.batch_size, "exporting to InfluxDB");
    let pacing = Pacing::from(config);
    let task = tokio::spawn(run(sink, source, pacing, metrics, shutdown));
    Ok(Exporter { task })
}

/// Run a blocking outbox call off the async workers.
async fn blocking<O: ExportSource + 'static, T: Send + 'static>(
    source: &Arc<Mutex<O>>,
    f: impl FnOnce(&mut O) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = source.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("export task: {e}"))))
}

/// Sleep, or return false early when shutdown is requested.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// The export loop; returns after `shutdown` (a write in flight is finished first).
pub async fn run<S: LineSink, O: ExportSource + 'static>(
    sink: S,
    source: O,
    pacing: Pacing,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let source = Arc::new(Mutex::new(source));
    let mut cursor = loop {
        match blocking(&source, |s| s.cursor()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the export cursor; retrying");
                if !pause(Duration::from_secs(1), &shutdown).await {
                    return;
                }
            }
        }
    };
    tracing::info!(
        outbox = cursor.outbox,
        alerts = cursor.alerts,
        "export resumes after the cursor"
    );
    let mut last_write = Instant::now();
    let mut backoff = pacing.first_backoff;
    let mut failing_since: Option<Instant> = None;
    // While the server stays down, a reminder with the growing backlog once a minute.
    let mut last_warn = Instant::now();
    while !shutdown.is_cancelled() {
        let limit = pacing.batch_size;
        let read = blocking(&source, move |s| {
            let backlog = s.backlog(cursor)?;
            Ok((backlog, s.next_batch(cursor, limit)?))
        })
        .await;
        let batch = match read {
            Ok((backlog, batch)) => {
                metrics.export_backlog.store(backlog, Relaxed);
                batch
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed; retrying");
                if !pause(Duration::from_secs(1), &shutdown).await {
                    break;
                }
                continue;
            }
        };
        let Some(batch) = batch else {
            if !pause(pacing.flush_interval, &shutdown).await {
                break;
            }
            continue;
        };
        // A partial batch waits for the flush interval so a trickle is not one request each.
        if batch.rows < pacing.batch_size {
            let due = last_write + pacing.flush_interval;
            let now = Instant::now();
            if due > now {
                if !pause(due - now, &shutdown).await {
                    break;
                }
                continue;
            }
        }
        let lines = batch.lines as u64;
        let result = if batch.lines == 0 {
            Ok(())
        } else {
            sink.write(batch.body).await
        };
        last_write = Instant::now();
        match result {
            Ok(()) => {
                metrics.export_lines.fetch_add(lines, Relaxed);
                metrics
                    .export_last_success_ms
                    .store(chrono::Utc::now().timestamp_millis(), Relaxed);
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        down_s = since.elapsed().as_secs(),
                        "export recovered; draining the backlog"
                    );
                }
                backoff = pacing.first_backoff;
            }
            Err(SinkError::Refused { status, text }) => {
                // Retrying the same lines cannot succeed; they stay in SQLite.
                metrics.export_dropped.fetch_add(lines, Relaxed);
                tracing::error!(status, %text, lines, after = ?cursor, last_id = batch.last_id,
                    "the long-term store refused a batch; skipped (still in SQLite)");
            }
            Err(SinkError::Unavailable(e)) => {
                metrics.export_errors.fetch_add(1, Relaxed);
                let backlog = metrics.export_backlog.load(Relaxed);
                if let Some(since) = failing_since {
                    if last_warn.elapsed() >= STILL_FAILING_EVERY {
                        last_warn = Instant::now();
                        tracing::warn!(error = %e, backlog, down_s = since.elapsed().as_secs(),
                            "export still failing; the backlog waits in SQLite");
                    }
                }
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                    last_warn = Instant::now();
                    tracing::warn!(error = %e, backlog, "export write failed; the backlog waits in SQLite, retrying with backoff");
                } else {
                    tracing::debug!(error = %e, backlog, ?backoff, "export write failed again");
                }
                if !pause(backoff, &shutdown).await {
                    break;
                }
                backoff = (backoff * 2).min(pacing.max_backoff);
                continue;
            }
        }
        let next = Cursor {
            outbox: batch.last_id,
            alerts: batch.last_alert_id.unwrap_or(cursor.alerts),
        };
        loop {
            match blocking(&source, move |s| s.advance(next)).await {
                Ok(()) => break,
                Err(e) => {
                    // The lines are written; if we stop now they are written again on restart,
                    // onto the same series and timestamps.
                    tracing::error!(error = %e, "advancing the export cursor failed; retrying");
                    if !pause(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                }
            }
        }
        cursor = next;
    }
    tracing::info!(
        outbox = cursor.outbox,
        alerts = cursor.alerts,
        "exporter stopped"
    );
}

#[cfg(test)]
mod tests;
