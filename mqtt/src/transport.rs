//! The byte stream under MQTT: plain TCP, or TLS over TCP (rustls). Both sides of dustwatch read
//! and write it through tokio's `AsyncRead`/`AsyncWrite`.
//!
//! With TLS, a write may leave encrypted bytes buffered in the TLS session until the stream is
//! flushed: writers call `flush` after each burst (a no-op for plain TCP).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("cannot connect to {addr}: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake { addr: String, source: io::Error },
}

/// A connected stream to the broker.
#[derive(Debug)]
pub enum MqttStream {
    Plain(TcpStream),
    // Boxed: a TLS session is ~1 KB of state beside a TCP stream's few words.
    Tls(Box<TlsStream<TcpStream>>),
}

impl MqttStream {
    /// Connect to `host:port`; with `tls`, complete a TLS handshake that checks the broker's
    /// certificate against `host`.
    pub async fn connect(
        host: &str,
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<MqttStream, ConnectError> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|source| ConnectError::Tcp {
                addr: addr.clone(),
                source,
            })?;
        let Some(config) = tls else {
            return Ok(MqttStream::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ConnectError::ServerName(host.to_string()))?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        Ok(MqttStream::Tls(Box::new(stream)))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, MqttStream::Tls(_))
    }

    /// Send small packets at once instead of coalescing them (Nagle off).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            MqttStream::Plain(s) => s.set_nodelay(nodelay),
            MqttStream::Tls(s) => s.get_ref().0.set_nodelay(nodelay),
        }
    }

    /// Halves that a reader and a writer can own side by side. Plain TCP splits without a lock;
    /// a TLS session is one state machine, shared by its halves through tokio's split.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            MqttStream::Plain(s) => {
                let (r, w) = s.into_split();
                (Either::Left(r), Either::Left(w))
            }
            MqttStream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Either::Right(r), Either::Right(w))
            }
        }
    }
}

/// The receiving half of an [`MqttStream`] (plain or TLS; tokio-util's `Either` reads either).
pub type ReadHalf =
    Either<tokio::net::tcp::OwnedReadHalf, tokio::io::ReadHalf<TlsStream<TcpStream>>>;

/// The sending half of an [`MqttStream`].
pub type WriteHalf =
    Either<tokio::net::tcp::OwnedWriteHalf, tokio::io::WriteHalf<TlsStream<TcpStream>>>;

impl AsyncRead for MqttStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MqttStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MqttStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MqttStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MqttStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MqttStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MqttStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MqttStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MqttStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MqttStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
