//! The one file that knows the InfluxDB client: [`InfluxSink`] implements [`LineSink`] with the
//! `influxdb2` crate (v2 write API, millisecond precision). Swapping the client means rewriting
//! this file only.
//!
//! The crate's pitfalls, handled here: `Client::new` panics on a bad URL (the URL is validated
//! first and the builder is used), and it replaces any path of the base URL with `/api/v2/write`
//! (a path is refused by [`InfluxConfig::validate`]). Its default reqwest client has no timeout,
//! so the builder passed in sets one: a stalled server becomes a retried error, not a hang.

use super::{ExportError, InfluxConfig, LineSink, SinkError};
use influxdb2::api::write::TimestampPrecision;
use influxdb2::RequestError;
use std::time::Duration;

/// Environment variable that overrides `[influx] token`.
pub const TOKEN_ENV: &str = "DUSTWATCH_INFLUX_TOKEN";

pub struct InfluxSink {
    client: influxdb2::Client,
    org: String,
    bucket: String,
}

impl InfluxSink {
    pub fn new(config: &InfluxConfig) -> Result<InfluxSink, ExportError> {
        config.validate()?;
        let token = std::env::var(TOKEN_ENV).unwrap_or_else(|_| config.token.clone());
        let http = reqwest::ClientBuilder::new()
            .timeout(Duration::from_secs(config.timeout_s))
            .connect_timeout(Duration::from_secs(config.timeout_s.min(10)));
        let client = influxdb2::ClientBuilder::with_builder(
            http,
            config.url.clone(),
            config.org.clone(),
            token,
        )
        .build()
        .map_err(|e| ExportError::Client(e.to_string()))?;
        Ok(InfluxSink {
            client,
            org: config.org.clone(),
            bucket: config.bucket.clone(),
        })
    }
}

impl LineSink for InfluxSink {
    async fn write(&self, body: String) -> Result<(), SinkError> {
        self.client
            .write_line_protocol_with_precision(
                &self.org,
                &self.bucket,
                body,
                TimestampPrecision::Milliseconds,
            )
            .await
            .map_err(|e| match e {
                RequestError::Http { status, text } => SinkError::from_status(
                    status.as_u16(),
                    text.chars().take(500).collect::<String>(),
                ),
                other => SinkError::Unavailable(other.to_string()),
            })
    }
}
