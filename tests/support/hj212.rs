//! HJ 212 TCP clients for the listener's tests: an in-process aggregator with a registry of two
//! devices and the listener on a free port, raw connections from a chosen loopback address
//! (127.0.0.2 is another client to the listener), frames and replies.

use super::embedded_broker;
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_protocol::hj212::{self, Frame};
use dustwatch_protocol::Reading;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

pub const MN1: &str = "410108HJ0000000000000001";
pub const PW1: &str = "123456";
/// Safety net for a hung socket; never an assertion on how long anything takes.
pub const GUARD: Duration = Duration::from_secs(30);

pub const REGISTRY: &str = r#"
[[site]]
id = "s1"
name = "Site 1"
street = "Town"

[[device]]
site = "s1"
id = "d1"
mn = "410108HJ0000000000000001"
password = "123456"
"#;

/// Another device of site `s1`, whose monitor reports in mg/m3, to append to [`REGISTRY`].
pub const SECOND_DEVICE: &str = r#"
[[device]]
site = "s1"
id = "d2"
mn = "410108HJ0000000000000002"
password = "654321"
unit = "mg/m3"
"#;

/// An aggregator with the HJ 212 listener on a free port.
pub struct Listener {
    pub agg: Aggregator,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
    _broker: dustwatch_broker::EmbeddedBroker,
}

impl Listener {
    pub async fn start(registry: &str, tune: impl FnOnce(&mut Config)) -> Listener {
        let broker = embedded_broker();
        let data = tempfile::tempdir().expect("temp dir");
        let file = data.path().join("registry.toml");
        std::fs::write(&file, registry).expect("write registry");
        let mut c = Config::default();
        let port = broker.addr().port();
        c.mqtt.url = format!("mqtt://127.0.0.1:{port}");
        c.mqtt.client_id = format!("hj212-guard-{port}");
        c.http.listen = "127.0.0.1:0".parse().expect("literal");
        c.store.data_dir = data.path().join("store");
        c.registry.file = Some(file);
        c.hj212.listen = Some("127.0.0.1:0".parse().expect("literal"));
        tune(&mut c);
        let shutdown = CancellationToken::new();
        let agg = Aggregator::start(&c, vec![], shutdown.clone())
            .await
            .expect("aggregator starts");
        let addr = agg.hj212_addr.expect("listener bound");
        Listener {
            agg,
            addr,
            shutdown,
            _data: data,
            _broker: broker,
        }
    }

    /// Connect from `from` (a loopback address such as 127.0.0.2).
    pub async fn connect_from(&self, from: [u8; 4]) -> TcpStream {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(IpAddr::from(from), 0))
            .expect("bind a loopback source address");
        socket.connect(self.addr).await.expect("connect")
    }

    /// Port of the embedded MQTT broker the aggregator subscribes to.
    pub fn broker_port(&self) -> u16 {
        self._broker.addr().port()
    }

    /// Rows of the store's `dead_letters` table, oldest first: (reason, detail, payload).
    pub fn dead_letters(&self) -> Vec<(String, String, Vec<u8>)> {
        let db = self._data.path().join("store").join("dustwatch.db");
        let c = rusqlite::Connection::open(db).expect("open the store");
        let mut q = c
            .prepare("SELECT reason, detail, payload FROM dead_letters ORDER BY rowid")
            .expect("query");
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read rows")
    }

    /// The readings of site `s1` stored in `[from, to)`.
    pub async fn readings(&self, from: i64, to: i64) -> Vec<(String, Reading)> {
        let reader = self.agg.reader.clone();
        tokio::task::spawn_blocking(move || reader.readings("s1", from, to).expect("query"))
            .await
            .expect("join")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.agg.wait().await.expect("clean stop");
    }

    /// Poll until `f` holds (at most the guard time).
    pub async fn until(&self, what: &str, f: impl Fn(&Aggregator) -> bool) {
        let deadline = tokio::time::Instant::now() + GUARD;
        while !f(&self.agg) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A data segment: header fields, then `CP=&&DataTime=..;items&&` (station type 39, dust).
pub fn segment(
    cn: u16,
    flag: u8,
    mn: &str,
    pw: &str,
    qn: &str,
    data_time: &str,
    items: &str,
) -> String {
    format!("QN={qn};ST=39;CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&DataTime={data_time};{items}&&")
}

/// A whole frame around a data segment.
pub fn frame(seg: &str) -> Vec<u8> {
    hj212::wrap_segment(seg).expect("segment fits")
}

/// A real-time data frame of `mn` with `pw` for 2017-01-02 15:`minute` (0-59), asking for a
/// reply (Flag=5).
pub fn data_frame(mn: &str, pw: &str, qn: &str, minute: u32) -> Vec<u8> {
    let data_time = format!("2017010215{minute:02}00");
    frame(&segment(
        2011,
        5,
        mn,
        pw,
        qn,
        &data_time,
        "a34002-Rtd=80,a34002-Flag=N",
    ))
}

/// A data frame of [`MN1`] at 15:01 with nothing usable in it (a bare 0 for air pressure, PM2.5
/// flagged D): acknowledged, kept raw.
pub fn nothing_usable_frame(qn: &str) -> Vec<u8> {
    frame(&segment(
        2011,
        5,
        MN1,
        PW1,
        qn,
        "20170102150100",
        "a01006-Rtd=0;a34004-Rtd=0,a34004-Flag=D",
    ))
}

/// Send a frame and read the listener's reply.
pub async fn exchange(s: &mut TcpStream, frame: &[u8]) -> Frame {
    s.write_all(frame).await.expect("send");
    reply(s).await
}

/// Read one CRLF-terminated line (a reply); `None` at EOF or on a reset.
pub async fn read_line(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut byte)).await {
            Ok(Ok(1)) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Some(line);
                }
            }
            Ok(_) => return None,
            Err(_) => panic!("no reply and no close within the guard time"),
        }
    }
}

pub async fn reply(s: &mut TcpStream) -> Frame {
    let line = read_line(s).await.expect("a reply, not a close");
    hj212::decode(&line).expect("the reply is a valid frame")
}

/// True once the server closed the connection (EOF or reset).
pub async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}
