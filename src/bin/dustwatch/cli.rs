//! The command line: every command, its flags, and how the flags override the config file.

use clap::{Args, Parser, Subcommand};
use dustwatch::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// dustwatch: construction-site dust monitoring. Devices publish readings over MQTT; the
/// aggregator stores them, judges them against the warning rules and serves the dashboard.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand takes. Precedence everywhere: flag, then `DUSTWATCH_*`
/// environment variable, then the config file, then the default.
#[derive(Debug, Args)]
pub struct Common {
    /// TOML config file (every setting and its default: dustwatch.example.toml).
    #[arg(long, global = true, env = "DUSTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log lines on stderr: `text` (coloured only on a terminal) or `json` (one object per
    /// line, for a journal or a log shipper).
    #[arg(long, global = true, env = "DUSTWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Data directory holding the SQLite store [default: ./dustwatch-data].
    #[arg(long, env = "DUSTWATCH_DATA")]
    pub data: Option<PathBuf>,
}

/// What a running aggregator needs beside its broker.
#[derive(Debug, Args)]
pub struct AggregatorArgs {
    /// HTTP listen address of the dashboard [default: 127.0.0.1:8080].
    #[arg(long, env = "DUSTWATCH_HTTP")]
    pub http: Option<SocketAddr>,
    /// Listen address of the native HJ 212-2017 TCP listener that site monitors connect to, e.g.
    /// 0.0.0.0:9212; overrides `[hj212] listen` [default: off].
    #[arg(long, env = "DUSTWATCH_HJ212_LISTEN")]
    hj212_listen: Option<SocketAddr>,
    /// Site registry TOML file with [[site]] tables [default: none].
    #[arg(long, env = "DUSTWATCH_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Rule profile TOML (see rules/) [default: the built-in rules/default.toml].
    #[arg(long, env = "DUSTWATCH_RULES")]
    pub rules: Option<PathBuf>,
    /// File holding the bearer token for write actions; overrides `[http]` (the token itself
    /// can be given as DUSTWATCH_WRITE_TOKEN) [default: generated at start and printed].
    #[arg(long, env = "DUSTWATCH_WRITE_TOKEN_FILE")]
    pub write_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The embedded broker's address.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Listen address of the embedded MQTT broker [default: 127.0.0.1:1883].
    #[arg(long, env = "DUSTWATCH_MQTT_LISTEN")]
    pub mqtt_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs on stderr; stdout carries what the user asked for (URLs, reports, scores).
pub fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rumqttd logs each closed probe connection and each device leaving at shutdown as an
        // error: quiet by default.
        .unwrap_or_else(|_| {
            "info,rumqttd=warn,rumqttd::server::broker=off,rumqttd::router::routing=off,rumqttc=warn"
                .into()
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: embedded broker, simulated fleet, aggregator, dashboard.
    #[cfg(feature = "sim")]
    Demo {
        /// Simulator scenario, shipped name or path [default: huiji-red-alert].
        #[arg(long, env = "DUSTWATCH_SCENARIO")]
        scenario: Option<String>,
        /// Simulated seconds per real second [default: 60].
        #[arg(long)]
        speed: Option<f64>,
        /// Simulator seed [default: 1].
        #[arg(long)]
        seed: Option<u64>,
        /// On a first run, replay the scenario from its start instead of opening just before
        /// its story starts to matter.
        #[arg(long)]
        from_start: bool,
        #[command(flatten)]
        aggregator: AggregatorArgs,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Run the aggregator against an MQTT broker (Mosquitto, EMQX, the embedded one, ...).
    Serve {
        /// Broker URL [default: mqtt://127.0.0.1:1883].
        #[arg(long, env = "DUSTWATCH_BROKER")]
        broker: Option<String>,
        /// MQTT client id; the persistent session is keyed by it [default: dustwatch-aggregator].
        #[arg(long, env = "DUSTWATCH_CLIENT_ID")]
        client_id: Option<String>,
        #[command(flatten)]
        aggregator: AggregatorArgs,
    },
    /// Print the `mappings { ... }` block every nats-server of the cluster needs for
    /// `[ingest] source = "nats"`: device topics to `[nats] partitions` partitions by site.
    NatsMappings,
    /// Run only the embedded MQTT broker.
    Broker {
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Write an external broker's access control from a registry (--registry FILE): one
    /// login per `[[device]]`, the aggregator's and the office's, and who may publish what.
    BrokerConfig {
        #[command(subcommand)]
        broker: BrokerKind,
    },
    /// Rule profiles: `dustwatch rules check FILE`.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// The city warning level: `dustwatch level set red` publishes it (retained) on the broker.
    Level {
        #[command(subcommand)]
        command: LevelCommand,
    },
    /// A command to a device through a running aggregator: `sprinkle --duration 10m`,
    /// `set-interval --interval 30s`, `reboot`. Waits for the device's answer.
    #[command(name = "command")]
    Device(crate::device_command::CommandArgs),
    /// Named users of the dashboard and the API, in the store in --data.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the daily zero-report of a local date from the store in --data.
    Report {
        /// Local date, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
        format: ReportFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Score stored alerts against a sensors-sim ground-truth file (precision, recall per kind).
    #[cfg(feature = "sim")]
    Score {
        /// The truth file written by `sensors-sim --truth FILE`.
        #[arg(long)]
        truth: PathBuf,
        /// Output format: `table` (Markdown) or `json`.
        #[arg(long, value_enum, default_value_t = ScoreFormat::Table)]
        format: ScoreFormat,
        /// The rule profile the aggregator judged with (default `[rules] profile`, else the
        /// built-in default): the window rules' truth is what its rules decide on perfect sensors.
        #[arg(long)]
        rules: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Render a dashboard definition's panels to PNG and SVG files (from the store in --data).
    Render {
        /// Dashboard definition, e.g. dashboards/office.toml.
        #[arg(long)]
        dashboard: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum BrokerKind {
    /// Mosquitto: `passwd` (hashed), `acl`, a `mosquitto.conf` snippet that uses them, and
    /// `credentials.toml` (mode 0600) with every password; existing passwords there are kept.
    Mosquitto {
        /// The site registry whose `[[device]]` tables get logins.
        #[arg(long, env = "DUSTWATCH_REGISTRY")]
        registry: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The office's username (city level and device commands) [default: office].
        #[arg(long, default_value = "office")]
        office_username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a profile; problems are reported with line, field and reason.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from DUSTWATCH_USER_PASSWORD, else from the first line
    /// of standard input (at least 8 characters).
    Add {
        name: String,
        /// viewer (reads), inspector (acts on alerts in the field), admin (the office).
        #[arg(long)]
        role: dustwatch::auth::Role,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users, their roles and whether they are disabled.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: their sessions and API tokens stop working at once.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue an API token for a user (`Authorization: Bearer <token>`); printed once.
    Token {
        name: String,
        /// What the token is for, e.g. the script using it.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LevelCommand {
    /// Publish a level (none, blue, yellow, orange, red) on `<root>/city/level`, retained.
    Set {
        level: dustwatch_protocol::Level,
        /// Broker URL [default: the config's mqtt.url, mqtt://127.0.0.1:1883].
        #[arg(long, env = "DUSTWATCH_BROKER")]
        broker: Option<String>,
        /// When the level takes effect, RFC 3339 [default: now].
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Log in as this user, e.g. the office's from `broker-config` [default: the config's
        /// mqtt.username].
        #[arg(long, env = "DUSTWATCH_MQTT_USERNAME")]
        username: Option<String>,
        #[arg(long, env = "DUSTWATCH_MQTT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

impl StoreArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(d) = &self.data {
            config.store.data_dir = d.clone();
        }
    }
}

impl AggregatorArgs {
    pub fn apply(&self, config: &mut Config) {
        self.store.apply(config);
        if let Some(r) = &self.rules {
            config.rules.profile = Some(r.clone());
        }
        if let Some(a) = self.http {
            config.http.listen = a;
        }
        if let Some(a) = self.hj212_listen {
            config.hj212.listen = Some(a);
        }
        if let Some(r) = &self.registry {
            config.registry.file = Some(r.clone());
        }
        if let Some(f) = &self.write_token_file {
            config.http.token_file = Some(f.clone());
            config.http.write_token = None;
        }
        // An environment variable only, never a flag: a flag would show in the process list.
        if let Some(t) = std::env::var_os("DUSTWATCH_WRITE_TOKEN") {
            config.http.write_token = Some(t.to_string_lossy().into_owned());
            config.http.token_file = None;
        }
    }
}

impl BrokerArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(a) = self.mqtt_listen {
            config.broker.listen = a;
        }
    }
}
