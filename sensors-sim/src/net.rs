//! One MQTT 3.1.1 connection of a device (or the city feed), driven by its owner's task.
//!
//! A monitor's firmware owns its socket, and so does a device here: there is no task per
//! connection and no channel hop per packet. rumqttc's `EventLoop` costs ~40 KB of touched memory
//! per connection whatever its options (fixed 10 KB read and write buffers, a 100-event queue, a
//! 64 Ki-entry QoS 2 table), 400 MB for 10,000 devices; this connection keeps buffers sized to
//! what a monitor sends (readings < 1 KB). Packets are written by `dustwatch_mqtt::packets` and
//! read by rumqttc's `mqttbytes` codec; when to ping is `dustwatch_mqtt::KeepAlive`'s decision.
//!
//! [`Connection::recv`] is cancel-safe (it may sit in a `select!` next to the device's timers):
//! its state, including a connect in progress and a half-written buffer, lives in the
//! connection, and it never awaits anything it would lose when dropped. Dropping a connection
//! closes the socket without a DISCONNECT, exactly like a firmware crash or a pulled cable, so the
//! broker sends the last will.

use bytes::{Buf, BytesMut};
use dustwatch_mqtt::packets::{self, Will};
use dustwatch_mqtt::tls::TlsClientConfig;
use dustwatch_mqtt::{Credentials, KeepAlive, Login, MqttStream, Tick};
use rumqttc::mqttbytes::{self, v4};
use rumqttc::{ConnectReturnCode, QoS};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Largest packet accepted from the broker (commands are a few dozen bytes).
const MAX_INCOMING: usize = 64 * 1024;
/// Read in steps of this much; the buffer grows only when a packet needs more.
const READ_STEP: usize = 512;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The login of every connection without one of its own in `credentials`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-device and office logins (the file `dustwatch broker-config` writes).
    pub credentials: Option<Arc<Credentials>>,
    /// TLS (`mqtts://`) with this configuration; None: plain TCP.
    pub tls: Option<TlsClientConfig>,
    /// Unacknowledged QoS 1 publishes per connection.
    pub inflight: u16,
    pub keep_alive: Duration,
    /// TCP connect plus CONNACK, once an attempt may start.
    pub connect_timeout: Duration,
    /// Connection attempts in progress at once (shared by all devices of a run): 10,000 devices
    /// powering on together would otherwise have the broker's accept queue overflow and every
    /// attempt time out together.
    pub connect_limit: Arc<Semaphore>,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            username: None,
            password: None,
            credentials: None,
            tls: None,
            inflight: 16,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            connect_limit: Arc::new(Semaphore::new(DEFAULT_CONNECT_LIMIT)),
        }
    }

    /// The shared login, if any.
    pub fn login(&self) -> Option<Login> {
        let (username, password) = self.username.clone().zip(self.password.clone())?;
        Some(Login { username, password })
    }

    /// A device's own login from the credentials file, else the shared one.
    pub fn device_login(&self, site: &str, device: &str) -> Option<Login> {
        self.credentials
            .as_ref()
            .and_then(|c| c.device(site, device))
            .or_else(|| self.login())
    }

    /// The office's login from the credentials file (the city level is the office's to
    /// publish), else the shared one.
    pub fn office_login(&self) -> Option<Login> {
        self.credentials
            .as_ref()
            .map(|c| c.office.clone())
            .or_else(|| self.login())
    }
}

/// Default number of connection attempts in progress at once.
pub const DEFAULT_CONNECT_LIMIT: usize = 256;

/// What a connection reports to its owner.
#[derive(Debug)]
pub enum NetEvent {
    /// CONNACK accepted.
    Connected,
    /// A publish went onto the wire with this id (links that number messages themselves; an MQTT
    /// connection returns the packet id from [`Connection::publish`] instead).
    Sent(u16),
    /// The broker acknowledged the publish with this packet id.
    Acked(u16),
    /// The peer will never acknowledge this id (HJ 212 over TCP: no reply after every retry, or
    /// a refusal). MQTT connections never report it.
    Unanswered(u16),
    /// A message arrived on a subscribed topic.
    Message(Vec<u8>),
    /// The connection is gone (refused, dropped, or closed after DISCONNECT).
    Lost(String),
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<Dial>> + Send>>;

struct Dial {
    stream: MqttStream,
    /// Held until CONNACK: the attempt counts against the connect limit until then.
    _permit: Option<OwnedSemaphorePermit>,
}

enum State {
    Connecting(Connecting),
    /// CONNECT written, waiting for CONNACK.
    Handshake(Dial),
    Up(MqttStream),
    Closed,
}

/// A live connection. Nothing moves unless [`Connection::recv`] is polled.
pub struct Connection {
    state: State,
    read: BytesMut,
    write: BytesMut,
    connect: Option<v4::Connect>,
    next_pkid: u16,
    keep_alive: Duration,
    connect_timeout: Duration,
    /// Connect deadline while connecting; then the keep-alive tick (every keep_alive / 2).
    timer: Pin<Box<Sleep>>,
    /// A packet went out since the last keep-alive tick.
    sent_since_tick: bool,
    pinger: KeepAlive,
    /// DISCONNECT queued: report `Lost` once it is on the wire.
    closing: bool,
    /// Bytes written to the stream since its last flush (TLS buffers them).
    unflushed: bool,
}

impl Connection {
    /// Start connecting with the endpoint's shared login; progress arrives from
    /// [`Connection::recv`].
    pub fn open(
        endpoint: &Endpoint,
        client_id: &str,
        will: Option<(String, Vec<u8>)>,
    ) -> Connection {
        Self::open_as(endpoint, client_id, endpoint.login(), will)
    }

    /// Start connecting with `login`.
    pub fn open_as(
        endpoint: &Endpoint,
        client_id: &str,
        login: Option<Login>,
        will: Option<(String, Vec<u8>)>,
    ) -> Connection {
        // A persistent session keeps `cmd` messages queued while the device is away; the device
        // keeps its own store-and-forward buffer, so it never relies on the session for readings.
        let will = will.map(|(topic, payload)| Will { topic, payload });
        let connect = packets::connect(client_id, endpoint.keep_alive, login.as_ref(), will);
        let (host, port) = (endpoint.host.clone(), endpoint.port);
        let tls = endpoint.tls.clone();
        let limit = endpoint.connect_limit.clone();
        let timeout = endpoint.connect_timeout;
        let dial: Connecting = Box::pin(async move {
            // A closed semaphore only means no limit.
            let permit = limit.acquire_owned().await.ok();
            let stream =
                tokio::time::timeout(timeout, MqttStream::connect(&host, port, tls.as_ref()))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
                    .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
            Ok(Dial {
                stream,
                _permit: permit,
            })
        });
        Connection {
            state: State::Connecting(dial),
            read: BytesMut::new(),
            write: BytesMut::new(),
            connect: Some(connect),
            next_pkid: 0,
            keep_alive: endpoint.keep_alive,
            connect_timeout: endpoint.connect_timeout,
            // Armed when the CONNECT is written (waiting for a permit is not part of it).
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
            sent_since_tick: false,
            // A device gives up at the first tick after an unanswered PINGREQ.
            pinger: KeepAlive::new(1),
            closing: false,
            unflushed: false,
        }
    }

    /// Whether CONNACK arrived and the connection still stands.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_)) && !self.closing
    }

    /// Queue a QoS 1 publish; returns its packet id, or `None` when not connected. It goes onto
    /// the wire while [`Connection::recv`] is polled. The owner bounds what is in flight.
    pub fn publish(&mut self, topic: &str, retain: bool, payload: &[u8]) -> Option<u16> {
        if !self.is_up() {
            return None;
        }
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        let pkid = self.next_pkid;
        packets::publish_qos1(&mut self.write, topic, retain, pkid, payload);
        self.sent_since_tick = true;
        Some(pkid)
    }

    /// Subscribe at QoS 1 (the SUBACK is not reported).
    pub fn subscribe(&mut self, topic: &str) {
        if !self.is_up() {
            return;
        }
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        if packets::subscribe(&mut self.write, topic, self.next_pkid).is_ok() {
            self.sent_since_tick = true;
        }
    }

    /// Close cleanly after what is queued: DISCONNECT, then `Lost("disconnected")`.
    pub fn disconnect(&mut self) {
        if !self.is_up() {
            self.state = State::Closed;
            self.closing = true;
            return;
        }
        packets::disconnect(&mut self.write);
        self.closing = true;
    }

    /// Drop the connection as a crash would: no DISCONNECT, so the last will fires.
    pub fn abort(self) {}

    /// The next event. Cancel-safe; `None` once the connection is closed and `Lost` was reported.
    pub async fn recv(&mut self) -> Option<NetEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn lost(&mut self, why: impl Into<String>) -> Poll<Option<NetEvent>> {
        self.state = State::Closed;
        self.closing = false;
        Poll::Ready(Some(NetEvent::Lost(why.into())))
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<NetEvent>> {
        loop {
            match &mut self.state {
                State::Closed => {
                    return if self.closing {
                        // A clean close reports `Lost` once, like any other end.
                        self.closing = false;
                        Poll::Ready(Some(NetEvent::Lost("disconnected".into())))
                    } else {
                        Poll::Ready(None)
                    };
                }
                State::Connecting(dial) => match dial.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return self.lost(format!("cannot connect: {e}")),
                    Poll::Ready(Ok(d)) => {
                        self.write.clear();
                        if let Some(c) = self.connect.take() {
                            if let Err(e) = c.write(&mut self.write) {
                                return self.lost(format!("CONNECT: {e}"));
                            }
                        }
                        let deadline = Instant::now() + self.connect_timeout;
                        self.timer.as_mut().reset(deadline);
                        self.state = State::Handshake(d);
                    }
                },
                State::Handshake(_) | State::Up(_) => {
                    if let Err(e) = self.flush(cx) {
                        return self.lost(e.to_string());
                    }
                    if self.closing && self.write.is_empty() && !self.unflushed {
                        self.state = State::Closed;
                        continue;
                    }
                    match self.parse() {
                        Ok(Some(ev)) => {
                            // Anything parsed may have queued a reply (PUBACK): write it now.
                            if let Err(e) = self.flush(cx) {
                                return self.lost(e.to_string());
                            }
                            return Poll::Ready(Some(ev));
                        }
                        Ok(None) => {}
                        Err(why) => return self.lost(why),
                    }
                    match self.fill(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => return self.lost(e.to_string()),
                        Poll::Pending => {}
                    }
                    if self.timer.as_mut().poll(cx).is_ready() {
                        if let Some(ev) = self.tick() {
                            return Poll::Ready(Some(ev));
                        }
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// The timer fired: a connect that took too long, or a keep-alive tick.
    fn tick(&mut self) -> Option<NetEvent> {
        if matches!(self.state, State::Handshake(_)) {
            self.state = State::Closed;
            return Some(NetEvent::Lost(format!(
                "no CONNACK within {:?}",
                self.connect_timeout
            )));
        }
        // Keep-alive 0 means no keep-alive: the timer then fires once a year and pings nothing.
        let sent = std::mem::take(&mut self.sent_since_tick) || self.keep_alive.is_zero();
        match self.pinger.tick(sent) {
            Tick::TimedOut => {
                self.state = State::Closed;
                return Some(NetEvent::Lost("keep-alive timeout: no PINGRESP".into()));
            }
            Tick::Ping => packets::pingreq(&mut self.write),
            Tick::Idle => {}
        }
        self.arm_keep_alive();
        None
    }

    fn arm_keep_alive(&mut self) {
        // Ticks at half the keep-alive: a packet goes out at least once per keep-alive.
        let period = if self.keep_alive.is_zero() {
            Duration::from_secs(86_400 * 365)
        } else {
            self.keep_alive / 2
        };
        self.timer.as_mut().reset(Instant::now() + period);
    }

    /// Write what is queued until done or the socket is full (then it waits for writability).
    fn flush(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.write.is_empty() {
            let Some(stream) = (match &mut self.state {
                State::Handshake(d) => Some(&mut d.stream),
                State::Up(s) => Some(s),
                _ => None,
            }) else {
                return Ok(());
            };
            match Pin::new(stream).poll_write(cx, &self.write) {
                Poll::Ready(Ok(0)) => {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed"))
                }
                Poll::Ready(Ok(n)) => {
                    self.write.advance(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        }
        // Start again at the front of the allocation.
        self.write.clear();
        if self.unflushed {
            // TLS holds records in its session until flushed (a no-op on plain TCP).
            let stream = match &mut self.state {
                State::Handshake(d) => &mut d.stream,
                State::Up(s) => s,
                _ => return Ok(()),
            };
            match Pin::new(stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Err(e),
                // Woken when the socket takes more; `recv` comes back here.
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Read what the socket has; `Pending` when there is nothing.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read.capacity() - self.read.len() < READ_STEP / 4 {
            self.read.reserve(READ_STEP);
        }
        let read = &mut self.read;
        let Some(stream) = (match &mut self.state {
            State::Handshake(d) => Some(&mut d.stream),
            State::Up(s) => Some(s),
            _ => None,
        }) else {
            return Poll::Pending;
        };
        match tokio_util::io::poll_read_buf(Pin::new(stream), cx, read) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the broker",
            ))),
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next packet in the read buffer that the owner needs to hear about.
    fn parse(&mut self) -> Result<Option<NetEvent>, String> {
        loop {
            let packet = match v4::read(&mut self.read, MAX_INCOMING) {
                Ok(p) => p,
                Err(mqttbytes::Error::InsufficientBytes(need)) => {
                    self.read.reserve(need);
                    return Ok(None);
                }
                Err(e) => return Err(format!("bad packet from the broker: {e}")),
            };
            self.pinger.heard();
            match packet {
                v4::Packet::ConnAck(ack) => {
                    if ack.code != ConnectReturnCode::Success {
                        return Err(format!("connection refused: {:?}", ack.code));
                    }
                    if let State::Handshake(d) = std::mem::replace(&mut self.state, State::Closed) {
                        // The permit goes back with `d`.
                        self.state = State::Up(d.stream);
                        self.arm_keep_alive();
                        return Ok(Some(NetEvent::Connected));
                    }
                    return Err("unexpected CONNACK".into());
                }
                v4::Packet::PubAck(ack) => return Ok(Some(NetEvent::Acked(ack.pkid))),
                v4::Packet::Publish(p) => {
                    if p.qos != QoS::AtMostOnce {
                        // Subscribed at QoS 1: the broker never sends QoS 2 here.
                        packets::puback(&mut self.write, p.pkid);
                        self.sent_since_tick = true;
                    }
                    return Ok(Some(NetEvent::Message(p.payload.to_vec())));
                }
                v4::Packet::PingResp => {}
                _ => {}
            }
        }
    }
}
