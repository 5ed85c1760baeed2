//! One HJ 212-2017 TCP connection from a device to a platform, driven on its own task, as a
//! monitor's modem does it: connect, write one frame per CRLF, wait for the platform's 9014 data
//! reply to each frame that asks for one (Flag bit 0), send it again when the reply is late
//! (HJ 212's OverTime / ReCount), give up on it after the last try.
//!
//! It reports to its device with the same [`NetEvent`]s as an MQTT connection (`Sent` when a
//! frame is on the wire, `Acked` when its reply came, `Unanswered` when none ever will), so the
//! device's firmware loop (store-and-forward buffer, in-flight window, reconnect with backoff) is
//! the same for both transports. Replies are matched by QN, which the platform echoes; a frame
//! without a readable QN can never be matched, so it is reported unanswered once written.

use crate::net::NetEvent;
use dustwatch_protocol::hj212::{self, Cn};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Longest line accepted from the platform (a reply is ~100 bytes; the standard's longest frame
/// is 1,036). A longer line is skipped, so a broken platform cannot grow our memory.
const MAX_LINE: usize = hj212::MAX_FRAME_LEN;

/// Where to connect and how patiently.
#[derive(Debug, Clone)]
pub struct Platform {
    /// `host:port` of the platform (resolved at each connect, as firmware does).
    pub addr: String,
    /// Frames written but not yet answered, at most (the device's window is the same).
    pub window: usize,
    /// How long to wait for a reply before sending the frame again (HJ 212 OverTime).
    pub reply_timeout: Duration,
    /// Times a frame is sent again after its first try before it is given up (HJ 212 ReCount).
    pub retries: u32,
    /// A connect (or a write) that takes longer than this fails, and the device backs off.
    pub connect_timeout: Duration,
}

enum Request {
    Send(Vec<u8>),
    Disconnect,
}

/// A live connection: the request channel, the events, and the task doing the I/O.
pub struct Hj212Link {
    requests: mpsc::Sender<Request>,
    pub events: mpsc::Receiver<NetEvent>,
    task: JoinHandle<()>,
}

impl Hj212Link {
    /// Start connecting; progress arrives as [`NetEvent`]s.
    pub fn open(platform: &Platform) -> Hj212Link {
        let cap = platform.window.max(1) + 8;
        let (requests, rx) = mpsc::channel(cap);
        let (tx, events) = mpsc::channel(cap + 8);
        let task = tokio::spawn(drive(platform.clone(), rx, tx));
        Hj212Link {
            requests,
            events,
            task,
        }
    }

    /// Queue one frame; false when the queue is full or the connection gone (keep it then).
    pub fn try_send(&self, frame: Vec<u8>) -> bool {
        self.requests.try_send(Request::Send(frame)).is_ok()
    }

    /// Close after the frames already queued are written; `Lost` follows.
    pub fn try_disconnect(&self) {
        let _ = self.requests.try_send(Request::Disconnect);
    }

    /// Drop the connection as a crash would (no more writes, socket closed).
    pub fn abort(self) {
        self.task.abort();
    }
}

impl Drop for Hj212Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A frame on the wire waiting for its reply.
struct Pending {
    id: u16,
    qn: String,
    frame: Vec<u8>,
    deadline: Instant,
    tries: u32,
}

async fn drive(p: Platform, mut requests: mpsc::Receiver<Request>, tx: mpsc::Sender<NetEvent>) {
    let why =
        match tokio::time::timeout(p.connect_timeout, TcpStream::connect(p.addr.as_str())).await {
            Ok(Ok(stream)) => {
                if tx.send(NetEvent::Connected).await.is_err() {
                    return;
                }
                session(&p, stream, &mut requests, &tx).await
            }
            Ok(Err(e)) => format!("cannot connect to the HJ 212 platform {}: {e}", p.addr),
            Err(_) => format!("connecting to the HJ 212 platform {} timed out", p.addr),
        };
    let _ = tx.send(NetEvent::Lost(why)).await;
}

/// Serve one established connection; returns why it ended.
async fn session(
    p: &Platform,
    stream: TcpStream,
    requests: &mut mpsc::Receiver<Request>,
    tx: &mpsc::Sender<NetEvent>,
) -> String {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut next_id: u16 = 1;
    let mut buf = vec![0u8; 2048];
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut skipping = false;
    let window = p.window.max(1);
    loop {
        let deadline = pending.iter().map(|f| f.deadline).min();
        tokio::select! {
            biased;
            read = rd.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return "closed by the platform".into(),
                    Ok(n) => n,
                    Err(e) => return format!("read failed: {e}"),
                };
                for &b in buf.get(..n).unwrap_or_default() {
                    if b == b'\n' {
                        // The whole frame, CRLF included, is what the decoder reads.
                        line.push(b);
                        if !skipping {
                            if let Some(ev) = on_line(&line, &mut pending) {
                                if tx.send(ev).await.is_err() {
                                    return "device gone".into();
                                }
                            }
                        }
                        line.clear();
                        skipping = false;
                    } else if line.len() < MAX_LINE {
                        line.push(b);
                    } else {
                        skipping = true;
                        line.clear();
                    }
                }
            }
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                let mut i = 0;
                while i < pending.len() {
                    if pending[i].deadline > now {
                        i += 1;
                        continue;
                    }
                    if pending[i].tries > p.retries {
                        if let Some(f) = pending.remove(i) {
                            tracing::debug!(qn = %f.qn, tries = f.tries, "no HJ 212 reply; frame given up");
                            if tx.send(NetEvent::Unanswered(f.id)).await.is_err() {
                                return "device gone".into();
                            }
                        }
                        continue;
                    }
                    // Late reply: send it again, as the standard's ReCount says.
                    let f = &mut pending[i];
                    f.tries += 1;
                    f.deadline = now + p.reply_timeout;
                    if let Err(e) = write(&mut wr, &f.frame, p.connect_timeout).await {
                        return e;
                    }
                    i += 1;
                }
            }
            req = requests.recv(), if pending.len() < window => match req {
                Some(Request::Send(frame)) => {
                    if let Err(e) = write(&mut wr, &frame, p.connect_timeout).await {
                        return e;
                    }
                    let id = next_id;
                    next_id = next_id.checked_add(1).unwrap_or(1);
                    if tx.send(NetEvent::Sent(id)).await.is_err() {
                        return "device gone".into();
                    }
                    match hj212::decode(&frame) {
                        Ok(f) if f.wants_reply() => pending.push_back(Pending {
                            id,
                            qn: f.qn,
                            frame,
                            deadline: Instant::now() + p.reply_timeout,
                            tries: 1,
                        }),
                        // No reply asked for: written is all the platform promises.
                        Ok(_) => {
                            if tx.send(NetEvent::Acked(id)).await.is_err() {
                                return "device gone".into();
                            }
                        }
                        // A frame the platform cannot read (a simulated fault) gets no reply.
                        Err(_) => {
                            if tx.send(NetEvent::Unanswered(id)).await.is_err() {
                                return "device gone".into();
                            }
                        }
                    }
                }
                Some(Request::Disconnect) => {
                    let _ = wr.shutdown().await;
                    return "disconnected".into();
                }
                None => return "device gone".into(),
            },
        }
    }
}

/// A line from the platform: the event it settles, if it answers a pending frame.
fn on_line(line: &[u8], pending: &mut VecDeque<Pending>) -> Option<NetEvent> {
    let reply = match hj212::decode(line) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring an unreadable line from the HJ 212 platform");
            return None;
        }
    };
    // The first frame with this QN: a duplicated frame carries the same QN and is answered twice.
    let i = pending.iter().position(|f| f.qn == reply.qn)?;
    let f = pending.remove(i)?;
    match reply.cn {
        Cn::DataReply => Some(NetEvent::Acked(f.id)),
        // 9011 to a data upload is a refusal (QnRtn 3 wrong PW, 4 unknown MN): sending it again
        // cannot help, and the registry needs fixing, so say so.
        Cn::RequestReply => {
            tracing::warn!(
                qn = %f.qn,
                mn = %reply.mn,
                qn_rtn = reply.cp.param("QnRtn").unwrap_or("?"),
                "the HJ 212 platform refused a frame (QnRtn 3: wrong PW, 4: unknown MN); check its registry's [[device]] MN and password"
            );
            Some(NetEvent::Unanswered(f.id))
        }
        other => {
            // Not an answer to an upload: keep waiting for the real one.
            tracing::debug!(
                cn = other.code(),
                "ignoring an HJ 212 frame that is not a reply"
            );
            pending.insert(i, f);
            None
        }
    }
}

/// Write a whole frame; a platform that stops reading fails the write (and the connection)
/// instead of hanging the device.
async fn write(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err("write timed out (the platform is not reading)".into()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
