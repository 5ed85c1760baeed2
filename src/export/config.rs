//! Settings of the InfluxDB exporter (`[influx]` in the config file). The section is optional:
//! without it nothing is exported and the outbox stays empty.

use super::ExportError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxConfig {
    /// Base URL of a server that takes the InfluxDB v2 write API (InfluxDB 2 OSS, InfluxDB
    /// Cloud, InfluxDB 3, VictoriaMetrics), without a path. Default `http://127.0.0.1:8086`.
    /// `https://` needs a build with `--features influx-tls`.
    pub url: String,
    /// Organization (name). Default empty (InfluxDB 3 and VictoriaMetrics ignore it).
    pub org: String,
    /// Bucket (InfluxDB 3: database). Default `dustwatch`.
    pub bucket: String,
    /// API token, sent as `Authorization: Token ...`. Default empty (no header). The
    /// `DUSTWATCH_INFLUX_TOKEN` environment variable overrides it, to keep it out of the file.
    pub token: String,
    /// Most lines in one write request. Default 5 000.
    pub batch_size: usize,
    /// A partial batch is written at the latest this long after the previous write; a full one
    /// at once. Default 1 000 ms.
    pub flush_interval_ms: u64,
    /// One write request may take this long before it counts as failed. Default 30 s.
    pub timeout_s: u64,
    /// Retries wait 0.5 s, doubling up to this. Default 30 s.
    pub max_backoff_s: u64,
}

impl Default for InfluxConfig {
    fn default() -> Self {
        InfluxConfig {
            url: "http://127.0.0.1:8086".into(),
            org: String::new(),
            bucket: "dustwatch".into(),
            token: String::new(),
            batch_size: 5_000,
            flush_interval_ms: 1_000,
            timeout_s: 30,
            max_backoff_s: 30,
        }
    }
}

impl InfluxConfig {
    /// Check what the influxdb2 client would otherwise panic on or silently get wrong.
    pub fn validate(&self) -> Result<(), ExportError> {
        let bad = |reason: &str| ExportError::BadUrl {
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        let url = reqwest::Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" if cfg!(feature = "influx-tls") => {}
            "https" => {
                return Err(bad(
                    "this build has no TLS; rebuild with `--features influx-tls` or put a \
                     TLS-terminating proxy on localhost",
                ))
            }
            other => return Err(bad(&format!("scheme `{other}` is not http or https"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("missing host"));
        }
        // The influxdb2 crate replaces the path with /api/v2/write: a prefix would be lost.
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "a path, query or fragment is not supported (the client writes to \
                 /api/v2/write at the root of the server); serve InfluxDB at the root",
            ));
        }
        if self.bucket.is_empty() {
            return Err(ExportError::Setting("`bucket` must not be empty".into()));
        }
        if self.batch_size == 0 || self.batch_size > 1_000_000 {
            return Err(ExportError::Setting(format!(
                "`batch_size` must be 1..=1000000, got {}",
                self.batch_size
            )));
        }
        if self.timeout_s == 0 {
            return Err(ExportError::Setting(
                "`timeout_s` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> InfluxConfig {
        InfluxConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_http_root_is_accepted() {
        with_url("http://127.0.0.1:8086").validate().expect("valid");
        with_url("http://influx.example:8086/")
            .validate()
            .expect("valid");
    }

    #[test]
    fn urls_the_client_would_panic_on_or_mangle_are_refused() {
        for url in [
            "not a url",
            "127.0.0.1:8086",
            "ftp://host:21",
            "http://host:8086/influx",
            "http://host:8086/?x=1",
        ] {
            let err = with_url(url).validate().expect_err(url);
            assert!(err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn https_needs_the_tls_feature() {
        let r = with_url("https://eu-central-1-1.aws.cloud2.influxdata.com").validate();
        assert_eq!(r.is_ok(), cfg!(feature = "influx-tls"), "{r:?}");
    }

    #[test]
    fn section_parses_with_defaults() {
        let c: InfluxConfig =
            toml::from_str("url = \"http://h:8086\"\nbucket = \"b\"\n").expect("parses");
        assert_eq!(c.batch_size, 5_000);
        assert_eq!(c.bucket, "b");
        assert!(toml::from_str::<InfluxConfig>("buket = \"b\"").is_err());
    }
}
