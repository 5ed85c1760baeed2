//! Settings: one serde struct per component, loaded from TOML (`--config FILE`), then overridden by
//! `DUSTWATCH_*` environment variables and command-line flags (the CLI applies those). Every field
//! has a documented default, so an empty file is a valid configuration.

use crate::export::InfluxConfig;
use crate::ingest::hj212_tcp::Hj212Config;
use crate::ingest::nats::NatsConfig;
use crate::ingest::{IngestConfig, MqttConfig};
use crate::store::sqlite::StoreConfig;
use dustwatch_broker::BrokerConfig;
use dustwatch_protocol::{Registry, Zone};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The external broker `serve` connects to.
    pub mqtt: MqttConfig,
    /// The embedded broker of `demo` and `broker`.
    pub broker: BrokerConfig,
    pub ingest: IngestConfig,
    /// The NATS cluster of `[ingest] source = "nats"`.
    pub nats: NatsConfig,
    /// The native HJ 212 TCP listener (off unless `listen` is set).
    pub hj212: Hj212Config,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub registry: RegistryConfig,
    pub demo: DemoConfig,
    pub time: TimeConfig,
    pub rules: RulesConfig,
    /// Commands to devices (`[commands]`).
    pub commands: crate::commands::CommandsConfig,
    /// Notifications of alert changes (`[notify]`); off while no target is configured.
    pub notify: crate::notify::NotifyConfig,
    /// Export to InfluxDB 2 (or any v2 write API server). Default absent: export off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influx: Option<InfluxConfig>,
}

/// The dashboard server (`[http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Bearer token for write actions (the environment variable `DUSTWATCH_WRITE_TOKEN` wins
    /// over it). Default: none; then `token_file`, else 128 random bits generated at start and
    /// printed (only then).
    pub write_token: Option<String>,
    /// A file holding the write token (surrounding whitespace ignored); not together with
    /// `write_token`. Default none.
    pub token_file: Option<PathBuf>,
    /// Connections open at once; more are closed as soon as they are accepted. Default 256.
    pub max_connections: usize,
    /// Request headers must be complete this long after their first byte (slow clients).
    /// Default 10 s.
    pub header_timeout_s: u64,
    /// A connection without traffic this long is closed. Default 60 s.
    pub idle_timeout_s: u64,
    /// Live-update streams (`/events`, one per open page) at once; more get 503. Default 64.
    pub max_streams: usize,
    /// The pages' language when the browser names none we have (`Accept-Language`) and the
    /// viewer has not switched (`?lang=`, remembered in a cookie): `zh-CN` or `en`.
    /// Default `zh-CN`.
    pub language: crate::web::i18n::Lang,
    /// Session cookies carry `Secure` (set it when a TLS proxy serves the pages; a request with
    /// `X-Forwarded-Proto: https` gets it anyway). Default false.
    pub secure_cookies: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            write_token: None,
            token_file: None,
            max_connections: 256,
            header_timeout_s: 10,
            idle_timeout_s: 60,
            max_streams: 64,
            language: crate::web::i18n::Lang::Zh,
            secure_cookies: false,
        }
    }
}

impl HttpConfig {
    /// The server's connection limits.
    pub fn limits(&self) -> crate::web::server::Limits {
        crate::web::server::Limits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_s),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_s),
        }
    }
}

/// The site registry (`[registry]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// A registry TOML file with `[[site]]` tables. Default none: every site is unregistered
    /// until the office registers it (the demo registers the scenario's sites).
    pub file: Option<PathBuf>,
}

/// The one-command demo (`[demo]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Simulator scenario, a shipped name or a path. Default `huiji-red-alert`.
    pub scenario: String,
    /// Simulated seconds per real second. Default 60.
    pub speed: f64,
    /// Simulator seed. Default 1.
    pub seed: u64,
    /// A first run begins at the scenario's start instead of just before its story starts
    /// to matter (the scenario's `demo_begin`). Default false.
    pub from_start: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            scenario: "huiji-red-alert".into(),
            speed: 60.0,
            seed: 1,
            from_start: false,
        }
    }
}

/// The rule profile (`[rules]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule profile TOML file. Default: the built-in `rules/default.toml`.
    pub profile: Option<PathBuf>,
    /// Judge committed readings against the profile. Default `true`; `false` stores readings
    /// without evaluating rules (the ingest benchmark compares both).
    pub enabled: bool,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            profile: None,
            enabled: true,
        }
    }
}

/// Time settings (`[time]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// IANA time zone of local days (reports, sprinkling counts). Default `Asia/Shanghai`.
    /// Parsed here, once: an unknown name is a configuration error with the name in it.
    pub zone: Zone,
    /// A site whose newest reading is this far behind the newest event time seen is offline.
    /// Default 900 s.
    pub offline_after_s: i64,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            zone: Zone::SHANGHAI,
            offline_after_s: 900,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Load from a TOML file; a missing `path` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
}

/// Load a registry file.
pub fn load_registry(path: &Path) -> Result<Registry, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let registry: Registry = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    for site in &registry.sites {
        if let Err(e) = dustwatch_protocol::topic::check_site_id(&site.id) {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: format!("site `{}`: {e}", site.id),
            });
        }
    }
    let mut mns = std::collections::HashSet::new();
    for d in &registry.devices {
        let bad = |message: String| ConfigError::Parse {
            path: path.display().to_string(),
            message: format!("device `{}` of site `{}`: {message}", d.id, d.site),
        };
        dustwatch_protocol::topic::check_site_id(&d.site).map_err(|e| bad(e.to_string()))?;
        if !dustwatch_protocol::topic::is_valid_id(&d.id) {
            return Err(bad("the id is not 1-64 characters of [A-Za-z0-9_-]".into()));
        }
        if let Some(mn) = &d.mn {
            if mn.is_empty() || !mns.insert(mn.as_str()) {
                return Err(bad(format!("MN `{mn}` is empty or listed twice")));
            }
        }
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c: Config = toml::from_str("").expect("empty config parses");
        assert_eq!(c, Config::default());
        assert_eq!(c.http.listen.port(), 8080);
    }

    #[test]
    fn shipped_examples_are_the_documented_defaults() {
        let c: Config = toml::from_str(include_str!("../dustwatch.example.toml"))
            .expect("dustwatch.example.toml parses");
        assert_eq!(c, Config::default(), "the example documents the defaults");
        let r: dustwatch_protocol::Registry =
            toml::from_str(include_str!("../registry.example.toml")).expect("registry example");
        assert_eq!(r.sites.len(), 2);
        assert_eq!(r.devices.len(), 2);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = toml::from_str::<Config>("[http]\nlisten = \"127.0.0.1:9000\"\nlsiten = 1\n")
            .expect_err("typo must be refused");
        let msg = err.to_string();
        assert!(msg.contains("lsiten"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn the_time_zone_is_parsed_once_here_with_the_name_in_the_error() {
        let c: Config = toml::from_str("[time]\nzone = \"Asia/Urumqi\"\n").expect("a zone");
        assert_eq!(c.time.zone.name(), "Asia/Urumqi");
        let err = toml::from_str::<Config>("[time]\nzone = \"Mars/Olympus\"\n")
            .expect_err("not an IANA name");
        let msg = err.to_string();
        assert!(msg.contains("unknown time zone `Mars/Olympus`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }
}
