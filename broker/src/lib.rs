//! The embedded MQTT broker: rumqttd in the same process.
//!
//! rumqttd only logs a failed bind, never reports the bound port and has no shutdown API, so this
//! wrapper checks the address itself, waits until the listener accepts, and sizes the in-memory
//! commit log so memory stays bounded.
//!
//! On loopback (the default) it may run without logins, as the one-machine demo does. Listening
//! beyond this machine needs logins: it refuses to start without them. Its checks stop at the
//! login: it has no per-topic rules, so any client with a login may publish anything.

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Settings of the embedded broker (`[broker]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// MQTT 3.1.1 listen address. Default `127.0.0.1:1883`.
    pub listen: SocketAddr,
    /// Optional username; with `password`, clients must log in. Default none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Credentials file written by `dustwatch broker-config mosquitto`: every login in it (each
    /// device's, the aggregator's, the office's) may connect. Default none.
    pub credentials: Option<PathBuf>,
    /// Size of one segment of the in-memory commit log, bytes. Default 8 MiB.
    pub max_segment_size: usize,
    /// Segments kept per log; memory is bounded by size x count per filter. Default 4.
    pub max_segment_count: usize,
    /// Largest accepted MQTT payload, bytes. Default 64 KiB.
    pub max_payload_size: usize,
    /// Unacknowledged QoS 1 messages in flight per connection. Default 1000.
    pub max_inflight_count: usize,
    /// Most simultaneous connections. Default 20 000 (a load test runs 10 000 devices).
    pub max_connections: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            username: None,
            password: None,
            credentials: None,
            max_segment_size: 8 << 20,
            max_segment_count: 4,
            max_payload_size: 64 << 10,
            max_inflight_count: 1000,
            max_connections: 20_000,
        }
    }
}

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("port {addr} is already in use; pass --mqtt-listen to pick another ({source})")]
    AddressInUse {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
    #[error("embedded broker failed to start: {0}")]
    Start(String),
    #[error("set both username and password for the embedded broker, or neither")]
    HalfCredentials,
    #[error(
        "the embedded broker would listen on {0}, beyond this machine, and accept anyone: set \
         [broker] credentials = FILE (written by `dustwatch broker-config mosquitto`) or \
         [broker] username and password, or listen on 127.0.0.1 (--mqtt-listen)"
    )]
    NeedsCredentials(SocketAddr),
    #[error(transparent)]
    Credentials(#[from] dustwatch_mqtt::CredentialsError),
}

/// A running embedded broker. rumqttd cannot be stopped: it lives until the process exits.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Start the broker on `config.listen` (port 0 picks a free port) and wait until it accepts.
    pub fn start(config: &BrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        let auth = logins(config)?;
        if auth.is_none() && !config.listen.ip().is_loopback() {
            return Err(BrokerError::NeedsCredentials(config.listen));
        }
        let addr = reserve(config.listen)?;
        let server = ServerSettings {
            name: "v4".to_string(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 0,
            connections: ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: config.max_payload_size,
                max_inflight_count: config.max_inflight_count,
                auth,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let rumqttd_config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: config.max_connections,
                max_outgoing_packet_count: 200,
                max_segment_size: config.max_segment_size,
                max_segment_count: config.max_segment_count,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("v4".to_string(), server)])),
            ..Default::default()
        };
        let mut broker = Broker::new(rumqttd_config);
        thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded broker stopped");
                }
            })
            .map_err(|e| BrokerError::Start(e.to_string()))?;
        wait_listening(addr)?;
        tracing::info!(%addr, "embedded MQTT broker listening");
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "the embedded broker checks logins only: it has no per-topic ACL, so any client \
                 with a login may publish anything (the city level, commands, as any device). \
                 Beyond one host use Mosquitto with the files of `dustwatch broker-config mosquitto`"
            );
        }
        Ok(EmbeddedBroker { addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Username -> password of everyone who may connect; None when no login is configured.
fn logins(config: &BrokerConfig) -> Result<Option<HashMap<String, String>>, BrokerError> {
    let mut map = HashMap::new();
    match (&config.username, &config.password) {
        (Some(u), Some(p)) => {
            map.insert(u.clone(), p.clone());
        }
        (None, None) => {}
        _ => return Err(BrokerError::HalfCredentials),
    }
    if let Some(path) = &config.credentials {
        for login in dustwatch_mqtt::Credentials::load(path)?.all_logins() {
            map.entry(login.username).or_insert(login.password);
        }
    }
    Ok((!map.is_empty()).then_some(map))
}

/// Check that `addr` can be bound and resolve port 0 to a concrete free port.
fn reserve(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| BrokerError::AddressInUse { addr, source })?;
    listener
        .local_addr()
        .map_err(|source| BrokerError::AddressInUse { addr, source })
    // The listener drops here; rumqttd binds the same address right after.
}

fn wait_listening(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(addr))
}

/// Where Mosquitto, the reference external broker, is installed, if it is: benchmarks and tests
/// run it as a child process beside the embedded broker.
pub fn mosquitto_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_port_is_a_clear_error() {
        let holder = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = holder.local_addr().expect("local addr");
        let err = EmbeddedBroker::start(&BrokerConfig {
            listen: addr,
            ..Default::default()
        })
        .expect_err("port is taken");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(err.to_string().contains("already in use"));
    }

    #[test]
    fn beyond_loopback_without_logins_is_refused() {
        let err = EmbeddedBroker::start(&BrokerConfig {
            listen: "0.0.0.0:0".parse().expect("literal"),
            ..Default::default()
        })
        .expect_err("no logins");
        assert!(matches!(err, BrokerError::NeedsCredentials(_)), "{err}");
        assert!(err.to_string().contains("[broker] credentials"), "{err}");
    }

    #[test]
    fn port_zero_starts_on_a_real_port() {
        let broker = EmbeddedBroker::start(&BrokerConfig {
            listen: "127.0.0.1:0".parse().expect("literal"),
            ..Default::default()
        })
        .expect("starts");
        assert_ne!(broker.addr().port(), 0);
        TcpStream::connect(broker.addr()).expect("accepts connections");
    }
}
