//! The connection to one upstream platform: connect, write a frame's packets, and wait for the
//! 9014 data reply with the frame's QN when one is wanted.

use super::ForwardError;
use dustwatch_protocol::hj212::{self, Cn, MAX_FRAME_LEN};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A connection attempt gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Link {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Link {
    pub async fn connect(address: &str) -> Result<Link, ForwardError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| ForwardError::Io("connect timed out".into()))?
            .map_err(|e| ForwardError::Io(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Ok(Link {
            reader: BufReader::new(r),
            writer: w,
        })
    }

    /// Write every packet of one frame; with `reply`, wait for a 9014 carrying `qn` (other
    /// frames the platform sends meanwhile are read and ignored). Writing and waiting each get
    /// `timeout`: a platform that stops reading must not hold the target forever.
    pub async fn send(
        &mut self,
        packets: &[Vec<u8>],
        qn: &str,
        reply: bool,
        timeout: Duration,
    ) -> Result<(), ForwardError> {
        for p in packets {
            tokio::time::timeout(timeout, self.writer.write_all(p))
                .await
                .map_err(|_| ForwardError::Io("write timed out".into()))?
                .map_err(|e| ForwardError::Io(format!("write: {e}")))?;
        }
        if !reply {
            return Ok(());
        }
        tokio::time::timeout(timeout, self.wait_reply(qn))
            .await
            .map_err(|_| ForwardError::NoReply {
                qn: qn.to_string(),
                after_ms: timeout.as_millis() as u64,
            })?
    }

    async fn wait_reply(&mut self, qn: &str) -> Result<(), ForwardError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            // Bounded: a line longer than any frame is garbage, and so is the connection.
            let n = (&mut self.reader)
                .take(MAX_FRAME_LEN as u64 + 8)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| ForwardError::Io(format!("read: {e}")))?;
            if n == 0 {
                return Err(ForwardError::Io(
                    "the platform closed the connection".into(),
                ));
            }
            if !line.ends_with(b"\n") {
                return Err(ForwardError::Io(
                    "the platform sent a line longer than a frame".into(),
                ));
            }
            match hj212::decode(&line) {
                Ok(f) if f.cn == Cn::DataReply && f.qn == qn => return Ok(()),
                Ok(f) => tracing::debug!(cn = f.cn.code(), qn = %f.qn, "upstream frame ignored"),
                Err(e) => tracing::debug!(error = %e, "undecodable line from upstream ignored"),
            }
        }
    }
}
