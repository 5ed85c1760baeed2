//! The aggregator's MQTT 3.1.1 session: one subscriber connection whose acknowledgements the
//! ingest loop sends itself, in bulk, after the store committed the messages.
//!
//! rumqttc's client sends one manual acknowledgement per turn of its event loop while each turn
//! reads up to ten publishes, so under a sustained stream the owed acknowledgements grew with the
//! backlog (a 36 MB queue in a heap profile) and the broker's flow control never engaged. Here a
//! commit's acknowledgements are written together, ahead of any further reading, and nothing is
//! read while the ingest queue is full: the broker holds the rest.
//!
//! Packets are encoded and decoded by rumqttc's `mqttbytes` codec. The reader is cancel-safe (it
//! sits in a `select!` beside the acknowledgements): every byte read stays in its buffer.

use bytes::{Buf, Bytes, BytesMut};
use dustwatch_mqtt::packets::{self, fixed_header};
use dustwatch_mqtt::{ConnectError, ConnectOptions, KeepAlive, ReadHalf, Tick, WriteHalf};
use rumqttc::mqttbytes::{self, v4};
use rumqttc::{ConnectReturnCode, QoS};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest packet read whole. A bigger PUBLISH is passed on as [`Incoming::Oversized`] with the
/// start of its payload and skipped as it streams in, so one huge message neither fills memory
/// nor wedges the session (a persistent session would redeliver it after every reconnect).
pub const MAX_PACKET: usize = 256 * 1024;
/// How much of an oversized payload is kept for its dead letter.
const OVERSIZED_PREFIX: usize = dustwatch_protocol::MAX_PAYLOAD_BYTES;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("no CONNACK from {addr} within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("broker refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("broker refused the subscription to `{0}`")]
    SubscribeRefused(String),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the broker")]
    Closed,
    #[error("bad packet from the broker: {0}")]
    Protocol(String),
    #[error("keep-alive timeout: nothing from the broker for {0:?}")]
    KeepAlive(Duration),
}

/// Who we are to the broker.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Broker, client id, login, keep-alive, TLS.
    pub connect: ConnectOptions,
    /// TCP connect, TLS handshake and CONNACK.
    pub connect_timeout: Duration,
}

/// Something the broker sent that ingest acts on.
#[derive(Debug)]
pub enum Incoming {
    /// A message; `pkid` is what its acknowledgement needs (QoS 1 only).
    Message {
        topic: String,
        payload: Bytes,
        qos: QoS,
        pkid: u16,
    },
    /// A PUBLISH larger than [`MAX_PACKET`]: its topic, the start of its payload and its size.
    /// It still needs its acknowledgement once its dead letter is committed.
    Oversized {
        topic: String,
        prefix: Vec<u8>,
        size: usize,
        qos: QoS,
        pkid: u16,
    },
    /// The subscription is in place.
    Subscribed,
}

/// A connected session, split so the reader and the writer can wait side by side.
pub struct Session {
    pub reader: Reader,
    pub writer: Writer,
    /// The broker kept our earlier session (and the messages it queued for us).
    pub session_present: bool,
}

impl Session {
    /// Connect with a persistent session (clean session off) and subscribe to `filter` at QoS 1.
    pub async fn connect(o: &SessionOptions, filter: &str) -> Result<Session, SessionError> {
        let c = &o.connect;
        let addr = c.url.to_string();
        let timeout = o.connect_timeout;
        let attempt = async {
            let stream = c.connect().await?;
            // Acknowledgements are small and the broker waits for them.
            let _ = stream.set_nodelay(true);
            let (rd, wr) = stream.into_split();
            let mut writer = Writer {
                half: wr,
                out: BytesMut::with_capacity(4096),
                wrote: false,
                unflushed: false,
            };
            let connect = packets::connect(&c.client_id, c.keep_alive, c.login.as_ref(), None);
            writer.encode(|b| connect.write(b))?;
            writer.flush().await?;
            let mut reader = Reader {
                half: rd,
                buf: BytesMut::with_capacity(READ_CHUNK),
                skip: 0,
                filter: filter.to_string(),
                heard: tokio::time::Instant::now(),
                // Busy draining a backlog, the broker may be slow to answer: two keep-alives.
                keep_alive: KeepAlive::new(4),
            };
            let ack = loop {
                match reader.packet().await? {
                    Some(v4::Packet::ConnAck(ack)) => break ack,
                    Some(other) => {
                        return Err(SessionError::Protocol(format!(
                            "expected CONNACK, got {other:?}"
                        )))
                    }
                    None => continue,
                }
            };
            if ack.code != ConnectReturnCode::Success {
                return Err(SessionError::Refused(ack.code));
            }
            writer.encode(|b| packets::subscribe(b, filter, 1))?;
            writer.flush().await?;
            Ok(Session {
                reader,
                writer,
                session_present: ack.session_present,
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| SessionError::ConnectTimeout { addr, timeout })?
    }
}

/// The receiving half.
pub struct Reader {
    half: ReadHalf,
    buf: BytesMut,
    /// Bytes of an oversized packet still to discard.
    skip: usize,
    filter: String,
    /// When the broker last sent anything.
    heard: tokio::time::Instant,
    keep_alive: KeepAlive,
}

impl Reader {
    /// The next message or subscription notice. Cancel-safe.
    pub async fn next(&mut self) -> Result<Incoming, SessionError> {
        loop {
            match self.packet().await? {
                Some(v4::Packet::Publish(p)) => {
                    return Ok(Incoming::Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos: p.qos,
                        pkid: p.pkid,
                    })
                }
                Some(v4::Packet::SubAck(ack)) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, v4::SubscribeReasonCode::Failure));
                    if refused {
                        return Err(SessionError::SubscribeRefused(self.filter.clone()));
                    }
                    return Ok(Incoming::Subscribed);
                }
                Some(v4::Packet::Disconnect) => return Err(SessionError::Closed),
                // PINGRESP (and anything else a broker may send a subscriber) only shows the
                // connection is alive, which `heard` already records.
                Some(_) => continue,
                // An oversized packet: reported once its topic and packet id are in.
                None => match self.oversized()? {
                    Some(big) => return Ok(big),
                    None => self.fill().await?,
                },
            }
        }
    }

    /// A keep-alive tick (every half keep-alive); `sent` says whether anything went out since
    /// the last one.
    pub fn keep_alive_tick(&mut self, sent: bool) -> Tick {
        self.keep_alive.tick(sent)
    }

    /// Time since the broker last sent anything.
    pub fn silent_for(&self) -> Duration {
        self.heard.elapsed()
    }

    /// The next whole packet in the buffer, reading more when needed. `None` when the buffer
    /// starts with an oversized packet (see [`Reader::oversized`]).
    async fn packet(&mut self) -> Result<Option<v4::Packet>, SessionError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.buf.len());
                self.buf.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    self.fill().await?;
                    continue;
                }
            }
            match v4::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(Some(p)),
                Err(mqttbytes::Error::InsufficientBytes(_)) => self.fill().await?,
                Err(mqttbytes::Error::PayloadSizeLimitExceeded(_)) => return Ok(None),
                Err(e) => return Err(SessionError::Protocol(e.to_string())),
            }
        }
    }

    /// Read what the socket has (at least one byte). Cancel-safe: `read_buf` loses nothing.
    async fn fill(&mut self) -> Result<(), SessionError> {
        self.buf.reserve(READ_CHUNK);
        if self.half.read_buf(&mut self.buf).await? == 0 {
            return Err(SessionError::Closed);
        }
        self.heard = tokio::time::Instant::now();
        self.keep_alive.heard();
        Ok(())
    }

    /// The buffer starts with a packet over [`MAX_PACKET`]: once its header, topic and packet id
    /// are in, report it and discard the rest as it arrives.
    fn oversized(&mut self) -> Result<Option<Incoming>, SessionError> {
        let Some((header_len, remaining)) = fixed_header(&self.buf) else {
            return Ok(None);
        };
        let byte1 = self.buf[0];
        if byte1 >> 4 != 3 {
            return Err(SessionError::Protocol(format!(
                "{remaining}-byte packet of type {} over the {MAX_PACKET}-byte limit",
                byte1 >> 4
            )));
        }
        let qos = match (byte1 >> 1) & 3 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let body = &self.buf[header_len..];
        if body.len() < 2 {
            return Ok(None);
        }
        let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        let start = 2 + topic_len + id_len;
        if body.len() < start {
            return Ok(None);
        }
        let topic = String::from_utf8_lossy(&body[2..2 + topic_len]).into_owned();
        let pkid = if id_len == 2 {
            u16::from_be_bytes([body[2 + topic_len], body[3 + topic_len]])
        } else {
            0
        };
        let size = remaining.saturating_sub(start);
        let prefix = body[start..]
            .iter()
            .take(OVERSIZED_PREFIX)
            .copied()
            .collect();
        // The prefix is taken; discard the whole frame from here on.
        self.skip = header_len + remaining;
        Ok(Some(Incoming::Oversized {
            topic,
            prefix,
            size,
            qos,
            pkid,
        }))
    }
}

/// The sending half: acknowledgements, keep-alive and DISCONNECT, queued then flushed.
pub struct Writer {
    half: WriteHalf,
    out: BytesMut,
    /// Something was written since the last keep-alive tick.
    wrote: bool,
    /// Written but not flushed yet.
    unflushed: bool,
}

impl Writer {
    fn encode(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>,
    ) -> Result<(), SessionError> {
        write(&mut self.out).map_err(|e| SessionError::Protocol(e.to_string()))?;
        Ok(())
    }

    /// Queue the acknowledgements the writer committed for connection `generation`; those of an
    /// earlier connection are dropped (the broker redelivers them, the store deduplicates).
    pub fn ack_all(&mut self, acks: &[super::writer::Ack], generation: u64) {
        for ack in acks.iter().filter(|a| a.generation == generation) {
            self.ack(ack.pkid);
        }
    }

    /// Queue the acknowledgement of a QoS 1 message.
    fn ack(&mut self, pkid: u16) {
        packets::puback(&mut self.out, pkid);
    }

    /// Whether anything went out since the last call (for the keep-alive tick).
    pub fn take_wrote(&mut self) -> bool {
        std::mem::take(&mut self.wrote)
    }

    /// Queue a PINGREQ.
    pub fn ping(&mut self) {
        packets::pingreq(&mut self.out);
    }

    /// Queue DISCONNECT (a clean close: the broker keeps the session and sends no will).
    pub fn disconnect(&mut self) {
        packets::disconnect(&mut self.out);
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.unflushed
    }

    /// Write what is queued. Cancel-safe: the buffer advances by what was written.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.out.is_empty() {
            self.half.write_all_buf(&mut self.out).await?;
            self.wrote = true;
            self.unflushed = true;
        }
        if self.unflushed {
            // TLS may hold the last record in its session until flushed (no-op on plain TCP).
            // Tracked apart so a flush cancelled here is finished by the next call.
            self.half.flush().await?;
            self.unflushed = false;
        }
        self.out.clear();
        Ok(())
    }
}
