//! `[mqtt]`: how the aggregator reaches its broker. Ingest and the publisher build their
//! connections from it through the shared MQTT layer (dustwatch-mqtt).

use dustwatch_mqtt::{ConnectOptions, Login, OptionsError, TlsSettings};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MqttConfigError {
    #[error("[mqtt]: {0}")]
    Options(#[from] OptionsError),
    #[error("[mqtt]: set both username and password, or neither")]
    HalfLogin,
}

/// How ingest connects to the broker (`[mqtt]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker URL, `mqtt://host:port`, or `mqtts://host:port` for TLS. Default
    /// `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// Client id; the persistent session is keyed by it, so keep it stable across restarts. The
    /// publisher connects as `<client_id>-pub`. Default `dustwatch-aggregator`.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Username of the publisher connection (same password). Default: `username`. A broker that
    /// takes the username as the client id (Mosquitto's `use_username_as_clientid`) needs one of
    /// its own, as `dustwatch broker-config` generates.
    pub publisher_username: Option<String>,
    /// `mqtts://`: PEM file of the CA that signed the broker's certificate. Default none: the
    /// system's CA certificates.
    pub ca_file: Option<PathBuf>,
    /// `mqtts://`: PEM client certificate, for brokers that require one. Default none.
    pub client_cert: Option<PathBuf>,
    /// `mqtts://`: PEM private key of `client_cert`. Default none.
    pub client_key: Option<PathBuf>,
    /// Topic root of contract v1. Default `dust/v1`.
    pub topic_root: String,
    /// Keep-alive, seconds. Default 30.
    pub keep_alive_s: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "dustwatch-aggregator".into(),
            username: None,
            password: None,
            publisher_username: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            topic_root: dustwatch_protocol::topic::DEFAULT_ROOT.into(),
            keep_alive_s: 30,
        }
    }
}

impl MqttConfig {
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }

    /// The ingest connection to `url` (the configured one unless a tool overrides it): client
    /// id, login, keep-alive and TLS.
    pub fn connect_options(&self, url: &str) -> Result<ConnectOptions, MqttConfigError> {
        if self.username.is_some() != self.password.is_some() {
            return Err(MqttConfigError::HalfLogin);
        }
        let login = self.username.clone().zip(self.password.clone());
        Ok(
            ConnectOptions::new(url, self.client_id.clone(), &self.tls())?
                .with_login(login.map(|(username, password)| Login { username, password }))
                .with_keep_alive(Duration::from_secs(self.keep_alive_s.max(5))),
        )
    }

    /// The publisher connection: client id `<client_id>-pub`, logged in as `publisher_username`
    /// when set.
    pub fn publisher_options(&self) -> Result<ConnectOptions, MqttConfigError> {
        let mut o = self
            .connect_options(&self.url)?
            .with_client_id(format!("{}-pub", self.client_id));
        if let (Some(login), Some(user)) = (o.login.as_mut(), &self.publisher_username) {
            login.username = user.clone();
        }
        Ok(o)
    }
}
