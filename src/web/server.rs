//! The HTTP server loop. axum's `serve` has no header-read timeout, idle timeout or connection
//! limit, so the listener is run here with hyper's HTTP/1 connection builder: at most
//! `max_connections` connections (more are closed as soon as they are accepted), request headers
//! complete within `header_timeout_s` of their first byte (a slowloris client sending partial
//! headers is closed; hyper applies it while waiting for the next request too), and a connection
//! without traffic for `idle_timeout_s` is closed (gracefully; dropped after a second idle
//! period, e.g. a request body that never comes). Live streams send a keep-alive comment every
//! 15 s, so they never idle.

use crate::metrics::Metrics;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Connection limits of the HTTP server (part of `[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// After shutdown, connections get this long to finish their requests.
const DRAIN: Duration = Duration::from_secs(5);

/// Serve `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "HTTP accept failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        }
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    metrics.http.connections_refused.fetch_add(1, Relaxed);
                    drop(stream);
                    continue;
                };
                metrics.http.connections.fetch_add(1, Relaxed);
                metrics.http.connections_open.fetch_add(1, Relaxed);
                let (router, metrics, shutdown) = (router.clone(), metrics.clone(), shutdown.clone());
                connections.spawn(async move {
                    connection(stream, router, limits, &metrics, shutdown).await;
                    metrics.http.connections_open.fetch_sub(1, Relaxed);
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("HTTP connections still busy after shutdown: closed");
        connections.shutdown().await;
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    metrics: &Metrics,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        started,
        last: last.clone(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.max(Duration::from_millis(100)));
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    let idle = limits.idle_timeout.max(Duration::from_secs(1));
    let mut closing = false;
    let mut idle_strikes = 0;
    loop {
        let last_activity = started + Duration::from_millis(last.load(Relaxed));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(last_activity + idle) => {
                let since = started + Duration::from_millis(last.load(Relaxed));
                if since + idle > Instant::now() {
                    idle_strikes = 0;
                    continue;
                }
                idle_strikes += 1;
                if idle_strikes == 1 {
                    metrics.http.idle_closed.fetch_add(1, Relaxed);
                    // Closes at once between requests; a request in progress may finish...
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    // ...unless it stays silent too (a body that never comes): drop it.
                    return;
                }
            }
        }
    }
}

/// A socket that notes when it last moved bytes (milliseconds since `started`).
struct Tracked {
    inner: TcpStream,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
