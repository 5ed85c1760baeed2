//! dustwatch's one MQTT layer, shared by the aggregator (ingest session, publisher) and the
//! simulator's devices:
//!
//! - [`url`]: broker URLs (`mqtt://`, `tcp://`, `mqtts://`, `ssl://`, bare `host:port`, IPv6 in
//!   brackets), parsed by one set of rules;
//! - [`options`]: who connects where (client id, login, keep-alive, TLS settings);
//! - [`tls`]: the rustls client configuration built from a CA file and an optional client
//!   certificate;
//! - [`transport`]: the byte stream under MQTT, plain TCP or TLS;
//! - [`credentials`]: the broker credentials file written by `dustwatch broker-config`;
//! - [`packets`]: the packets both clients write (CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ,
//!   DISCONNECT) and the fixed header's length;
//! - [`keep_alive`]: when to ping and when to give the broker up, without I/O.

pub mod credentials;
pub mod keep_alive;
pub mod options;
pub mod packets;
pub mod tls;
pub mod transport;
pub mod url;

pub use credentials::{Credentials, CredentialsError, DeviceLogin, Login};
pub use keep_alive::{KeepAlive, Tick};
pub use options::ConnectOptions;
pub use options::OptionsError;
pub use tls::{TlsError, TlsSettings};
pub use transport::{ConnectError, MqttStream, ReadHalf, WriteHalf};
pub use url::{BrokerUrl, Scheme, UrlError};
