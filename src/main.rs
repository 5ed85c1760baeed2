//! The `dustwatch` command line: parses flags and wires the pieces together; nothing else.

#[cfg(feature = "sim")]
use anyhow::Context;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_broker::EmbeddedBroker;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// dustwatch: construction-site dust monitoring. Devices publish readings over MQTT; the
/// aggregator stores them, judges them against the warning rules and serves the dashboard.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Settings every subcommand takes. Precedence everywhere: flag, then `DUSTWATCH_*`
/// environment variable, then the config file, then the default.
#[derive(Debug, Args)]
struct Common {
    /// TOML config file (every setting and its default: dustwatch.example.toml).
    #[arg(long, global = true, env = "DUSTWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines on stderr: `text` (coloured only on a terminal) or `json` (one object per
    /// line, for a journal or a log shipper).
    #[arg(long, global = true, env = "DUSTWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Where the store is.
#[derive(Debug, Args)]
struct StoreArgs {
    /// Data directory holding the SQLite store [default: ./dustwatch-data].
    #[arg(long, env = "DUSTWATCH_DATA")]
    data: Option<PathBuf>,
}

/// What a running aggregator needs beside its broker.
#[derive(Debug, Args)]
struct AggregatorArgs {
    /// HTTP listen address of the dashboard [default: 127.0.0.1:8080].
    #[arg(long, env = "DUSTWATCH_HTTP")]
    http: Option<SocketAddr>,
    /// Listen address of the native HJ 212-2017 TCP listener that site monitors connect to, e.g.
    /// 0.0.0.0:9212; overrides `[hj212] listen` [default: off].
    #[arg(long, env = "DUSTWATCH_HJ212_LISTEN")]
    hj212_listen: Option<SocketAddr>,
    /// Site registry TOML file with [[site]] tables [default: none].
    #[arg(long, env = "DUSTWATCH_REGISTRY")]
    registry: Option<PathBuf>,
    /// Rule profile TOML (see rules/) [default: the built-in rules/default.toml].
    #[arg(long, env = "DUSTWATCH_RULES")]
    rules: Option<PathBuf>,
    /// File holding the bearer token for write actions; overrides `[http]` (the token itself
    /// can be given as DUSTWATCH_WRITE_TOKEN) [default: generated at start and printed].
    #[arg(long, env = "DUSTWATCH_WRITE_TOKEN_FILE")]
    write_token_file: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

/// The embedded broker's address.
#[derive(Debug, Args)]
struct BrokerArgs {
    /// Listen address of the embedded MQTT broker [default: 127.0.0.1:1883].
    #[arg(long, env = "DUSTWATCH_MQTT_LISTEN")]
    mqtt_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs on stderr; stdout carries what the user asked for (URLs, reports, scores).
fn init_logs(format: LogFormat) {
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
enum Command {
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
enum ReportFormat {
    Html,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScoreFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum BrokerKind {
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
enum RulesCommand {
    /// Validate a profile; problems are reported with line, field and reason.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum LevelCommand {
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
    fn apply(&self, config: &mut Config) {
        if let Some(d) = &self.data {
            config.store.data_dir = d.clone();
        }
    }
}

impl AggregatorArgs {
    fn apply(&self, config: &mut Config) {
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
    fn apply(&self, config: &mut Config) {
        if let Some(a) = self.mqtt_listen {
            config.broker.listen = a;
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(cli.common.log_format);
    let mut config = Config::load(cli.common.config.as_deref())?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: stopping");
            on_signal.cancel();
        }
    });

    match cli.command {
        Command::Serve {
            broker,
            client_id,
            aggregator,
        } => {
            aggregator.apply(&mut config);
            if let Some(b) = broker {
                config.mqtt.url = b;
            }
            if let Some(c) = client_id {
                config.mqtt.client_id = c;
            }
            let agg = Aggregator::start(&config, Vec::new(), shutdown.clone()).await?;
            print_urls(&agg, &config.mqtt.url);
            agg.wait().await?;
        }
        Command::Render {
            dashboard,
            out,
            store,
        } => {
            store.apply(&mut config);
            let tz: chrono_tz::Tz = config
                .time
                .zone
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown time zone `{}`", config.time.zone))?;
            let files = dustwatch::dashboard::render_from_store(
                &config.store.data_dir,
                &dashboard,
                &out,
                tz,
            )?;
            for f in files {
                println!("{}", f.display());
            }
        }
        Command::Rules {
            command: RulesCommand::Check { file },
        } => match dustwatch::rules::Profile::load(&file) {
            Ok(p) => println!(
                "{}: profile `{}` is valid ({} window rules)",
                file.display(),
                p.name,
                p.windows.len()
            ),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Command::Level {
            command:
                LevelCommand::Set {
                    level,
                    broker,
                    at,
                    username,
                    password,
                },
        } => {
            let url = broker.unwrap_or(config.mqtt.url.clone());
            if username.is_some() || password.is_some() {
                config.mqtt.username = username;
                config.mqtt.password = password;
            }
            let ts = at.map_or_else(
                || chrono::Utc::now().timestamp_millis(),
                |t| t.timestamp_millis(),
            );
            dustwatch::publish::publish_once(
                &url,
                &config.mqtt,
                &dustwatch_protocol::TopicRoot::new(&config.mqtt.topic_root).city_level(),
                serde_json::to_vec(&dustwatch_protocol::CityLevel { level, ts })?,
            )
            .await?;
            println!("city level {level} published on {url} (in force from {ts})");
        }
        Command::Report {
            date,
            format,
            store,
        } => {
            store.apply(&mut config);
            let tz: chrono_tz::Tz = config
                .time
                .zone
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown time zone {}", config.time.zone))?;
            let reader = open_reader(&config)?;
            let report = dustwatch::report::daily(&reader, date, tz)?;
            match format {
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Csv => print!("{}", dustwatch::report::to_csv(&report)),
                ReportFormat::Html => println!("{}", dustwatch::web::report_html(&report)),
            }
        }
        #[cfg(feature = "sim")]
        Command::Score {
            truth,
            format,
            store,
        } => {
            store.apply(&mut config);
            let text = std::fs::read_to_string(&truth)
                .with_context(|| format!("reading {}", truth.display()))?;
            let truth: sensors_sim::Truth = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a sensors-sim truth file", truth.display()))?;
            let reader = open_reader(&config)?;
            let scores = dustwatch::score::score(&reader, &truth)?;
            match format {
                ScoreFormat::Json => println!("{}", serde_json::to_string_pretty(&scores)?),
                ScoreFormat::Table => print!("{}", dustwatch::score::table(&scores)),
            }
        }
        Command::BrokerConfig {
            broker:
                BrokerKind::Mosquitto {
                    registry: file,
                    out,
                    office_username,
                },
        } => {
            let registry = dustwatch::config::load_registry(&file)?;
            let who = dustwatch::broker_config::Identities {
                topic_root: dustwatch_protocol::TopicRoot::new(&config.mqtt.topic_root),
                aggregator_client_id: config.mqtt.client_id.clone(),
                office_username,
            };
            let w = dustwatch::broker_config::write(&registry, &who, &out)?;
            for site in &w.sites_without_devices {
                eprintln!(
                    "warning: site `{site}` has no [[device]] table in {}: its devices get no login",
                    file.display()
                );
            }
            println!(
                "{} device logins, the aggregator's and the office's:\n  \
                 {}  password file (hashed)\n  \
                 {}  ACL\n  \
                 {}  for mosquitto.conf\n  \
                 {}  every password (mode 0600): devices, `sensors-sim --credentials`\n  \
                 {}  the aggregator's [mqtt] login",
                w.credentials.devices.len(),
                w.password_file.display(),
                w.acl_file.display(),
                w.conf_file.display(),
                w.credentials_file.display(),
                w.aggregator_file.display(),
            );
        }
        Command::Broker { broker } => {
            broker.apply(&mut config);
            let broker = EmbeddedBroker::start(&config.broker)?;
            println!("MQTT broker listening on mqtt://{}", broker.addr());
            shutdown.cancelled().await;
        }
        #[cfg(feature = "sim")]
        Command::Demo {
            scenario,
            speed,
            seed,
            from_start,
            aggregator,
            broker,
        } => {
            aggregator.apply(&mut config);
            broker.apply(&mut config);
            config.demo.from_start |= from_start;
            if let Some(s) = scenario {
                config.demo.scenario = s;
            }
            if let Some(s) = speed {
                config.demo.speed = s;
            }
            if let Some(s) = seed {
                config.demo.seed = s;
            }
            demo(config, shutdown).await?;
        }
    }
    Ok(())
}

#[cfg(feature = "sim")]
async fn demo(mut config: Config, shutdown: CancellationToken) -> Result<()> {
    // On a machine that already runs a broker (or a dashboard) on the default port, the demo
    // moves to a free one instead of failing; an address given explicitly is kept as given.
    let defaults = Config::default();
    let credentials = config
        .broker
        .credentials
        .as_deref()
        .map(dustwatch_mqtt::Credentials::load)
        .transpose()?;
    if !config.broker.listen.ip().is_loopback()
        && config.broker.username.is_none()
        && credentials.is_none()
    {
        // Reachable from other machines: never without a login. Shown once, here.
        let password = dustwatch::broker_config::generate_password()?;
        println!(
            "the embedded broker listens on {} beyond this machine: clients log in as `dustwatch` \
             with password {password} (generated for this run; set [broker] username and \
             password, or credentials, to choose)",
            config.broker.listen
        );
        config.broker.username = Some("dustwatch".into());
        config.broker.password = Some(password);
    }
    let broker = match EmbeddedBroker::start(&config.broker) {
        Err(dustwatch_broker::BrokerError::AddressInUse { addr, .. })
            if config.broker.listen == defaults.broker.listen =>
        {
            eprintln!("note: {addr} is in use; the embedded broker takes a free port instead");
            config.broker.listen.set_port(0);
            EmbeddedBroker::start(&config.broker)?
        }
        other => other?,
    };
    if config.http.listen == defaults.http.listen
        && std::net::TcpListener::bind(config.http.listen).is_err()
    {
        eprintln!(
            "note: {} is in use; the dashboard takes a free port instead",
            config.http.listen
        );
        config.http.listen.set_port(0);
    }
    let addr = broker.addr();
    config.mqtt.url = format!("mqtt://{addr}");
    config.mqtt.username = config.broker.username.clone();
    config.mqtt.password = config.broker.password.clone();
    if let (None, Some(c)) = (&config.mqtt.username, &credentials) {
        config.mqtt.username = Some(c.aggregator.username.clone());
        config.mqtt.publisher_username = Some(c.aggregator.publisher_username.clone());
        config.mqtt.password = Some(c.aggregator.password.clone());
    }
    let scenario = sensors_sim::Scenario::load(&config.demo.scenario)
        .with_context(|| format!("loading scenario `{}`", config.demo.scenario))?;
    let registry = scenario.registry();
    // A scenario with HJ 212 TCP devices needs the listener: on a free local port unless one
    // was given, and the simulator is pointed at it.
    let tcp_devices = scenario
        .plan(&Default::default())
        .map_err(|e| anyhow::anyhow!("scenario `{}`: {e}", config.demo.scenario))?
        .devices
        .iter()
        .any(|d| d.transport == sensors_sim::scenario::Transport::Hj212Tcp);
    if tcp_devices && config.hj212.listen.is_none() {
        config.hj212.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let agg = Aggregator::start_with(&config, registry, shutdown.clone()).await?;
    print_urls(&agg, &config.mqtt.url);

    // A second start goes on where the first stopped: the fleet resumes at the store's fleet
    // clock (where most sites are; not the newest reading, which one wrong clock could set)
    // instead of replaying (and the store deduplicating) what it already holds.
    let resume_at = agg
        .reader
        .hot()
        .fleet_clock()
        .and_then(chrono::DateTime::from_timestamp_millis);
    let resume_at = match resume_at {
        Some(t) => {
            println!("the store has data up to {t}: the simulated fleet resumes there");
            Some(t)
        }
        // A first run opens where the story starts to matter.
        None if !config.demo.from_start => {
            chrono::DateTime::from_timestamp_millis(scenario.demo_begin_ms())
                .filter(|t| t.timestamp_millis() > scenario.start_ms())
        }
        None => None,
    };
    let options = sensors_sim::SimOptions {
        resume_at,
        host: addr.ip().to_string(),
        port: addr.port(),
        username: config.broker.username.clone(),
        password: config.broker.password.clone(),
        credentials: credentials.map(std::sync::Arc::new),
        topic_root: dustwatch_protocol::TopicRoot::new(&config.mqtt.topic_root),
        speed: sensors_sim::Speed::Factor(config.demo.speed),
        seed: config.demo.seed,
        hj212_platform: agg
            .hj212_addr
            .filter(|_| tcp_devices)
            .map(|a| platform_addr(a).to_string()),
        ..Default::default()
    };
    let sim = sensors_sim::Sim::new(scenario, options);
    let sim_shutdown = shutdown.clone();
    let sim_task = tokio::spawn(async move { sim.run(sim_shutdown).await });
    agg.wait().await?;
    match sim_task.await {
        Ok(Ok(summary)) => tracing::info!("simulator stopped: {summary}"),
        Ok(Err(e)) => tracing::warn!(error = %e, "simulator stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "simulator task failed"),
    }
    Ok(())
}

/// Where a local client reaches a listener bound to `addr` (an unspecified address means this
/// machine).
#[cfg(feature = "sim")]
fn platform_addr(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}

fn print_urls(agg: &Aggregator, broker: &str) {
    println!("dustwatch is running");
    println!("  dashboard   http://{}/", agg.http_addr);
    println!("  sites API   http://{}/api/sites", agg.http_addr);
    println!("  metrics     http://{}/metrics", agg.http_addr);
    println!("  MQTT broker {broker}");
    if let Some(a) = agg.hj212_addr {
        println!("  HJ 212 TCP  {a}");
    }
    if agg.write_token_generated {
        println!("  write token {}", agg.write_token);
    } else {
        println!("  write token (configured)");
    }
    println!("Press Ctrl-C to stop.");
}

/// A read-only view of the store in `config.store.data_dir`.
fn open_reader(config: &Config) -> Result<dustwatch::store::SqliteReader> {
    let db = config.store.data_dir.join("dustwatch.db");
    anyhow::ensure!(
        db.exists(),
        "no store at {} (pass --data DIR)",
        db.display()
    );
    Ok(dustwatch::store::SqliteReader::open(
        &config.store.data_dir,
        Default::default(),
    )?)
}
