//! Who connects where: one set of connect options for every MQTT client of dustwatch.

use crate::credentials::Login;
use crate::tls::{TlsError, TlsSettings};
use crate::transport::{ConnectError, MqttStream};
use crate::url::{BrokerUrl, UrlError};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_rustls::rustls::ClientConfig;

#[derive(Debug, Error)]
pub enum OptionsError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("TLS settings for {url}: {source}")]
    Tls { url: String, source: TlsError },
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: BrokerUrl,
    pub client_id: String,
    pub login: Option<Login>,
    pub keep_alive: Duration,
    /// The rustls configuration, present exactly when the URL asks for TLS.
    pub tls: Option<Arc<ClientConfig>>,
}

impl ConnectOptions {
    /// Options for `url`; the TLS settings are read (files loaded) only for `mqtts://`.
    pub fn new(
        url: &str,
        client_id: impl Into<String>,
        tls: &TlsSettings,
    ) -> Result<ConnectOptions, OptionsError> {
        let url = BrokerUrl::parse(url)?;
        let tls = if url.is_tls() {
            Some(tls.client_config().map_err(|source| OptionsError::Tls {
                url: url.to_string(),
                source,
            })?)
        } else {
            None
        };
        Ok(ConnectOptions {
            url,
            client_id: client_id.into(),
            login: None,
            keep_alive: Duration::from_secs(30),
            tls,
        })
    }

    pub fn with_login(mut self, login: Option<Login>) -> Self {
        self.login = login;
        self
    }

    pub fn with_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The same broker and settings under another client id.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Open the byte stream (TCP, and the TLS handshake for `mqtts://`).
    pub async fn connect(&self) -> Result<MqttStream, ConnectError> {
        MqttStream::connect(&self.url.host, self.url.port, self.tls.as_ref()).await
    }

    /// The same options for a rumqttc client.
    pub fn rumqttc(&self) -> rumqttc::MqttOptions {
        // rumqttc resolves "host:port" as one string, so an IPv6 address needs its brackets
        // there (over TLS it also names the server with it, where brackets are invalid: an IPv6
        // literal with mqtts:// works for ingest and devices, not for the publisher).
        let host = if self.url.host.contains(':') && self.tls.is_none() {
            format!("[{}]", self.url.host)
        } else {
            self.url.host.clone()
        };
        let mut o = rumqttc::MqttOptions::new(self.client_id.clone(), host, self.url.port);
        o.set_keep_alive(self.keep_alive.max(Duration::from_secs(1)));
        if let Some(login) = &self.login {
            o.set_credentials(login.username.clone(), login.password.clone());
        }
        if let Some(config) = &self.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config.clone()),
            ));
        }
        o
    }
}
