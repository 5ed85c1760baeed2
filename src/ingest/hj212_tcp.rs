//! The native HJ 212 TCP listener (`[hj212] listen`), the way site monitors connect to a
//! platform: each device opens a TCP connection and sends one frame per CRLF.
//!
//! A frame's MN names the device through the registry's `[[device]]` tables and its PW must be the
//! device's. Every frame becomes one record on the same bounded queue as MQTT messages (a reading,
//! or a dead letter keeping the raw frame); a frame that asks for a reply (Flag bit 0) gets its
//! 9014 data reply only after its reading is committed, in the order the frames came. Unknown MN
//! and wrong PW get the same 9011 request reply (QnRtn 3) when one was asked for, after the same
//! delay, so a guess at an MN cannot be told from a guess at a PW (`guard.rs`: growing delays,
//! lockouts per MN and per address, rate-limited dead letters). Packets of split frames are
//! reassembled per connection.
//!
//! Defences: at most `max_connections` connections, `max_connections_per_addr` of them from one
//! address (more are closed at once); frames longer than `max_frame_bytes` are rejected and
//! skipped up to their CRLF; a connection is closed when it sends no frame of a known MN with its
//! PW within `first_frame_timeout_s`, sends nothing for `idle_timeout_s`, takes more than
//! `read_timeout_s` to finish a frame (a slow or half-open client), does not take a reply within
//! `write_timeout_s`, or sends `max_bad_frames` bad frames in a row. At most `max_inflight` frames of one connection wait for
//! their commit; reading pauses meanwhile, so a fast device is slowed by TCP backpressure.

use super::hj212::{partial_frame, reading_record, FrameReject, Hj212Devices};
use super::writer::Item;
use crate::metrics::Metrics;
use crate::store::Record;
use dustwatch_protocol::hj212::{
    self, data_reply, request_reply, Cn, Frame, Hj212Error, QnRtn, Reassembler, MAX_FRAME_LEN,
};

mod config;
mod guard;
pub use config::Hj212Config;
use guard::{Guard, Verdict};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A running listener.
pub struct Hj212Listener {
    /// The bound address (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    /// Ends after shutdown, once every connection closed (so the store writer can finish).
    pub task: tokio::task::JoinHandle<()>,
}

struct Shared {
    config: Hj212Config,
    devices: Arc<Hj212Devices>,
    metrics: Arc<Metrics>,
    guard: Guard,
}

/// Serve HJ 212 devices on `listener`, feeding `items` (the store writer's queue), until
/// `shutdown` is cancelled.
pub fn spawn(
    listener: TcpListener,
    config: Hj212Config,
    devices: Arc<Hj212Devices>,
    items: mpsc::Sender<Item>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<Hj212Listener> {
    let addr = listener.local_addr()?;
    for d in devices.without_password() {
        tracing::warn!(
            site = %d.site, device = %d.id, mn = d.mn.as_deref().unwrap_or_default(),
            "HJ 212 device has no password: any PW is accepted for its MN; set `password` in its [[device]] table"
        );
    }
    let shared = Arc::new(Shared {
        guard: Guard::new(&config),
        config,
        devices,
        metrics,
    });
    let task = tokio::spawn(accept_loop(listener, shared, items, shutdown));
    tracing::info!(%addr, "HJ 212 listener started");
    Ok(Hj212Listener { addr, task })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    items: mpsc::Sender<Item>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "HJ 212 connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        shared.metrics.hj212.connections_refused.fetch_add(1, Relaxed);
                        tracing::warn!(%peer, max = shared.config.max_connections, "HJ 212 connection refused: too many open");
                        drop(stream);
                        continue;
                    };
                    let ip = peer.ip();
                    if !shared.guard.open(ip) {
                        shared.metrics.hj212.connections_refused_per_addr.fetch_add(1, Relaxed);
                        tracing::debug!(%peer, max = shared.config.max_connections_per_addr, "HJ 212 connection refused: too many open from this address");
                        drop(stream);
                        continue;
                    }
                    let metrics = shared.metrics.clone();
                    metrics.hj212.connections.fetch_add(1, Relaxed);
                    metrics.hj212.connections_open.fetch_add(1, Relaxed);
                    let conn = Connection::new(shared.clone(), peer, items.clone(), shutdown.clone());
                    let shutdown = shutdown.clone();
                    let shared = shared.clone();
                    connections.spawn(async move {
                        conn.run(stream, shutdown).await;
                        shared.guard.close(ip);
                        drop(permit);
                        metrics.hj212.connections_open.fetch_sub(1, Relaxed);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "HJ 212 accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    // Connections stop on the same token; wait for them so no queue sender outlives ingest.
    drop(items);
    while connections.join_next().await.is_some() {}
    tracing::info!("HJ 212 listener stopped");
}

/// A frame waiting for its commit (when it left a record to commit), and the reply to send then.
struct Inflight {
    committed: Option<oneshot::Receiver<()>>,
    reply: Vec<u8>,
}

/// What one frame gave.
struct Handled {
    /// The raw frame of a reading stored without some values, queued before `record`.
    partial: Option<Record>,
    record: Option<Record>,
    reply: Option<Vec<u8>>,
    bad: bool,
    /// A refused MN/PW: the reply goes after this delay without waiting for a commit.
    refused: Option<std::time::Duration>,
}

impl Handled {
    fn bad(record: Option<Record>, reply: Option<Vec<u8>>) -> Self {
        Handled {
            partial: None,
            record,
            reply,
            bad: true,
            refused: None,
        }
    }
}

enum Flow {
    Continue,
    Close,
}

struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    topic: String,
    items: mpsc::Sender<Item>,
    splits: Reassembler,
    inflight: VecDeque<Inflight>,
    bad_in_row: u32,
    /// A frame of a known MN with its PW came (the first-frame timeout no longer applies).
    logged_in: bool,
    shutdown: CancellationToken,
}

impl Connection {
    fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        items: mpsc::Sender<Item>,
        shutdown: CancellationToken,
    ) -> Self {
        let splits = Reassembler::new(shared.config.max_pending_splits);
        Connection {
            shared,
            peer,
            topic: format!("hj212-tcp://{peer}"),
            items,
            splits,
            inflight: VecDeque::new(),
            bad_in_row: 0,
            logged_in: false,
            shutdown,
        }
    }

    async fn run(mut self, stream: TcpStream, shutdown: CancellationToken) {
        tracing::debug!(peer = %self.peer, "HJ 212 device connected");
        let why = self.serve(stream, &shutdown).await;
        tracing::debug!(peer = %self.peer, why, "HJ 212 connection closed");
    }

    async fn serve(&mut self, stream: TcpStream, shutdown: &CancellationToken) -> &'static str {
        let c = &self.shared.config;
        let max_frame = c.max_frame_bytes.clamp(16, MAX_FRAME_LEN);
        let idle = Duration::from_secs(c.idle_timeout_s.max(1));
        let read_timeout = Duration::from_secs(c.read_timeout_s.max(1));
        let write_timeout = Duration::from_secs(c.write_timeout_s.max(1));
        let max_inflight = c.max_inflight.max(1);
        let first_frame_by = Instant::now() + Duration::from_secs(c.first_frame_timeout_s.max(1));
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let mut buf = vec![0u8; 4096];
        // The frame being received, and when its first byte came (also set while skipping the
        // rest of an oversized frame, so an endless line times out).
        let mut line: Vec<u8> = Vec::with_capacity(512);
        let mut line_started: Option<Instant> = None;
        let mut skipping = false;
        let mut last_input = Instant::now();
        let mut eof = false;
        loop {
            if eof && self.inflight.is_empty() {
                return "closed by device";
            }
            let can_read = !eof && self.inflight.len() < max_inflight;
            let mut deadline = match line_started {
                Some(t) => t + read_timeout,
                None => last_input + idle,
            };
            if !self.logged_in {
                deadline = deadline.min(first_frame_by);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return "shutdown",
                done = next_commit(&mut self.inflight) => {
                    let Some(next) = self.inflight.pop_front() else { continue };
                    if done.is_err() {
                        return "store writer stopped";
                    }
                    match tokio::time::timeout(write_timeout, wr.write_all(&next.reply)).await {
                        Ok(Ok(())) => {
                            self.shared.metrics.hj212.replies.fetch_add(1, Relaxed);
                        }
                        Ok(Err(_)) => return "write failed",
                        Err(_) => {
                            self.shared.metrics.hj212.timeouts.fetch_add(1, Relaxed);
                            return "reply not taken (write timeout)";
                        }
                    }
                }
                read = rd.read(&mut buf), if can_read => {
                    let n = match read {
                        Ok(0) => {
                            eof = true;
                            if !line.is_empty() && !skipping {
                                // Connection closed mid-frame: the piece is a truncated frame.
                                let piece = std::mem::take(&mut line);
                                if let Flow::Close = self.frame(&piece).await {
                                    return "closed";
                                }
                            }
                            line.clear();
                            continue;
                        }
                        Ok(n) => n,
                        Err(_) => return "read failed",
                    };
                    let now = Instant::now();
                    last_input = now;
                    let mut rest = buf.get(..n).unwrap_or_default();
                    while !rest.is_empty() {
                        let end = rest.iter().position(|b| *b == b'\n').map(|i| i + 1);
                        let (piece, tail) = rest.split_at(end.unwrap_or(rest.len()));
                        rest = tail;
                        let complete = end.is_some();
                        if line_started.is_none() {
                            line_started = Some(now);
                        }
                        if skipping {
                            if complete {
                                skipping = false;
                                line_started = None;
                            }
                            continue;
                        }
                        if line.len() + piece.len() > max_frame {
                            let mut head = std::mem::take(&mut line);
                            let room = max_frame.saturating_sub(head.len());
                            head.extend_from_slice(piece.get(..room).unwrap_or(piece));
                            // The data segment is at least this long (the frame has one byte
                            // more than `head`); the rest is skipped unread.
                            let len = head.len().saturating_sub(hj212::FRAME_OVERHEAD - 1);
                            let flow = self
                                .reject(FrameReject::Frame(Hj212Error::Oversized { len }), &head)
                                .await;
                            if complete {
                                line_started = None;
                            } else {
                                skipping = true;
                            }
                            if let Flow::Close = flow {
                                return "too many bad frames";
                            }
                            continue;
                        }
                        line.extend_from_slice(piece);
                        if complete {
                            line_started = None;
                            let frame = std::mem::take(&mut line);
                            if let Flow::Close = self.frame(&frame).await {
                                return "too many bad frames";
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline), if can_read => {
                    self.shared.metrics.hj212.timeouts.fetch_add(1, Relaxed);
                    if !self.logged_in && deadline >= first_frame_by {
                        return "no valid first frame in time";
                    }
                    if line.is_empty() || skipping {
                        return "idle timeout";
                    }
                    // A frame that never finished: keep it as a truncated frame.
                    let piece = std::mem::take(&mut line);
                    let _ = self.frame(&piece).await;
                    return "read timeout mid-frame";
                }
            }
        }
    }

    /// Handle one received line (a frame with its CRLF, or a piece cut by EOF or timeout).
    async fn frame(&mut self, raw: &[u8]) -> Flow {
        self.shared.metrics.hj212.frames.fetch_add(1, Relaxed);
        let handled = self.handle(raw);
        if let Some(delay) = handled.refused.filter(|d| !d.is_zero()) {
            // The connection reads nothing meanwhile; parallel connections pay their own.
            self.shared.metrics.hj212.auth_delayed.fetch_add(1, Relaxed);
            tokio::select! {
                _ = self.shutdown.cancelled() => return Flow::Close,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        self.submit(handled).await
    }

    async fn reject(&mut self, reject: FrameReject, raw: &[u8]) -> Flow {
        self.shared.metrics.hj212.frames.fetch_add(1, Relaxed);
        let record = reject.dead_letter(&self.topic, raw, &self.shared.metrics);
        self.submit(Handled::bad(Some(record), None)).await
    }

    fn handle(&mut self, raw: &[u8]) -> Handled {
        let rejected = |this: &Self, reject: FrameReject, reply: Option<Vec<u8>>| {
            tracing::debug!(peer = %this.peer, reason = reject.label().unwrap_or("invalid"), "HJ 212 frame rejected");
            Handled::bad(
                Some(reject.dead_letter(&this.topic, raw, &this.shared.metrics)),
                reply,
            )
        };
        let frame = match hj212::decode(raw) {
            Ok(f) => f,
            Err(e) => return rejected(self, e.into(), None),
        };
        let devices = self.shared.devices.clone();
        let guard = &self.shared.guard;
        let ip = self.peer.ip();
        let locked = guard.check(&frame.mn, ip, Instant::now()) == Verdict::Locked;
        let device = devices.by_mn(&frame.mn);
        // Known MN or not, the password is compared (an unknown MN against an empty one), so
        // both refusals cost the same work.
        let pw_ok = Hj212Devices::password_ok_or_unknown(device, &frame.pw);
        let device = match device {
            Some(d) if pw_ok && !locked => d,
            _ => {
                let reject = if locked {
                    FrameReject::LockedOut(frame.mn.clone())
                } else if device.is_none() {
                    FrameReject::UnknownMn(frame.mn.clone())
                } else {
                    FrameReject::BadPassword(frame.mn.clone())
                };
                return self.refuse(&frame, reject, raw, locked);
            }
        };
        if !self.logged_in || self.bad_in_row > 0 {
            guard.success(&frame.mn, ip);
        }
        self.logged_in = true;
        let whole = match self.splits.push(frame) {
            Ok(Some(whole)) => whole,
            Ok(None) => {
                return Handled {
                    partial: None,
                    record: None,
                    reply: None,
                    bad: false,
                    refused: None,
                }
            }
            Err(e) => return rejected(self, e.into(), None),
        };
        match reading_record(&device.site, &device.id, &whole, &device.profile()) {
            Ok((record, dropped)) => {
                self.shared.metrics.hj212.readings.fetch_add(1, Relaxed);
                Handled {
                    partial: partial_frame(&self.topic, raw, &dropped, &self.shared.metrics),
                    record: Some(record),
                    reply: reply_if_wanted(&whole, data_reply),
                    bad: false,
                    refused: None,
                }
            }
            Err(reject @ FrameReject::NoValues(_)) => {
                // A sound frame whose values are all unusable (a monitor warming up reports
                // zeros): kept raw and acknowledged like data, not a bad frame.
                Handled {
                    partial: None,
                    record: Some(reject.dead_letter(&self.topic, raw, &self.shared.metrics)),
                    reply: reply_if_wanted(&whole, data_reply),
                    bad: false,
                    refused: None,
                }
            }
            Err(reject) => {
                // A request we do not carry out (e.g. 1062) is refused the standard way.
                let is_request = !whole.cn.is_data()
                    && !matches!(
                        whole.cn,
                        Cn::DataReply | Cn::RequestReply | Cn::ExecutionResult
                    );
                let reply = if is_request {
                    reply_if_wanted(&whole, |f| request_reply(f, QnRtn::Rejected))
                } else {
                    None
                };
                rejected(self, reject, reply)
            }
        }
    }

    /// An unknown MN, a wrong PW or a locked-out MN/address: one reply and one delay for all of
    /// them; the dead letter only within the rate limit (the rejection is counted either way).
    fn refuse(&mut self, frame: &Frame, reject: FrameReject, raw: &[u8], locked: bool) -> Handled {
        let m = &self.shared.metrics;
        let r = self
            .shared
            .guard
            .refuse(&frame.mn, self.peer.ip(), locked, Instant::now());
        if r.locked {
            m.hj212.lockouts.fetch_add(1, Relaxed);
            tracing::warn!(peer = %self.peer, mn = %frame.mn, "HJ 212 MN or address locked out after repeated MN/PW failures");
        }
        m.hj212
            .auth_tracked
            .store(self.shared.guard.tracked() as i64, Relaxed);
        tracing::debug!(peer = %self.peer, reason = reject.label().unwrap_or("invalid"), "HJ 212 frame refused");
        let record = if r.dead_letter {
            Some(reject.dead_letter(&self.topic, raw, m))
        } else {
            if let Some(label) = reject.label() {
                m.hj212.reject(label);
            }
            m.hj212.auth_dead_letters_dropped.fetch_add(1, Relaxed);
            None
        };
        Handled {
            partial: None,
            record,
            reply: reply_if_wanted(frame, |f| request_reply(f, QnRtn::BadPassword)),
            bad: true,
            refused: Some(r.delay),
        }
    }

    /// Queue a record for the store writer (waiting while the queue is full) and remember the
    /// reply to send once it is committed.
    async fn submit(&mut self, handled: Handled) -> Flow {
        if handled.bad {
            self.bad_in_row += 1;
        } else {
            self.bad_in_row = 0;
        }
        // A refusal's reply does not wait for its dead letter (which may not even be kept).
        let wait_commit = handled.refused.is_none();
        let (on_commit, inflight) = match handled.reply {
            Some(reply) if wait_commit && handled.record.is_some() => {
                let (tx, rx) = oneshot::channel();
                (
                    Some(tx),
                    Some(Inflight {
                        committed: Some(rx),
                        reply,
                    }),
                )
            }
            Some(reply) => (
                None,
                Some(Inflight {
                    committed: None,
                    reply,
                }),
            ),
            None => (None, None),
        };
        if let Some(partial) = handled.partial {
            let item = Item {
                record: Some(partial),
                ack: None,
                on_commit: None,
                received: std::time::Instant::now(),
            };
            if self.items.send(item).await.is_err() {
                return Flow::Close;
            }
        }
        if let Some(record) = handled.record {
            let item = Item {
                record: Some(record),
                ack: None,
                on_commit,
                received: std::time::Instant::now(),
            };
            if self.items.send(item).await.is_err() {
                return Flow::Close;
            }
        }
        self.inflight.extend(inflight);
        if self.bad_in_row >= self.shared.config.max_bad_frames.max(1) {
            self.shared
                .metrics
                .hj212
                .closed_for_errors
                .fetch_add(1, Relaxed);
            tracing::info!(peer = %self.peer, bad = self.bad_in_row, "HJ 212 connection closed after bad frames in a row");
            return Flow::Close;
        }
        Flow::Continue
    }
}

/// The encoded reply to `frame` when it asked for one (Flag bit 0).
fn reply_if_wanted(frame: &Frame, make: impl FnOnce(&Frame) -> Frame) -> Option<Vec<u8>> {
    if !frame.wants_reply() {
        return None;
    }
    match hj212::encode(&make(frame)) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(error = %e, mn = %frame.mn, "HJ 212 reply could not be encoded");
            None
        }
    }
}

/// Wait for the oldest in-flight frame's commit; pending forever when there is none.
async fn next_commit(inflight: &mut VecDeque<Inflight>) -> Result<(), oneshot::error::RecvError> {
    match inflight.front_mut() {
        Some(Inflight {
            committed: Some(rx),
            ..
        }) => rx.await,
        Some(Inflight {
            committed: None, ..
        }) => Ok(()),
        None => std::future::pending().await,
    }
}
