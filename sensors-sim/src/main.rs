//! `sensors-sim`: the command line. Parses arguments and wires the library together.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dustwatch_mqtt::{BrokerUrl, Credentials, TlsSettings};
use dustwatch_protocol::TopicRoot;
use sensors_sim::scenario::{DEFAULT_SCENARIO, SHIPPED};
use sensors_sim::{clock::parse_duration, Scenario, Sim, SimOptions, Speed, Stats};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "sensors-sim",
    version,
    about = "A fleet of simulated construction-site dust monitors publishing over MQTT"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the shipped scenarios.
    Scenarios,
    /// Print the registry (sites) of a scenario as TOML, for the aggregator.
    Registry {
        #[arg(long, default_value = DEFAULT_SCENARIO)]
        scenario: String,
        #[arg(long)]
        devices: Option<u32>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// MQTT broker, `mqtt://host:port` (or `host:port`), or `mqtts://host:port` for TLS.
    #[arg(
        long,
        default_value = "mqtt://127.0.0.1:1883",
        env = "SENSORS_SIM_BROKER"
    )]
    broker: String,
    /// Login of every device (unless --credentials has its own) [default: none].
    #[arg(long, env = "SENSORS_SIM_USERNAME")]
    username: Option<String>,
    #[arg(long, env = "SENSORS_SIM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Credentials file written by `dustwatch broker-config`: each device logs in as itself,
    /// the city feed as the office [default: none].
    #[arg(long, env = "SENSORS_SIM_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// mqtts://: PEM file of the CA that signed the broker's certificate [default: the system's
    /// CA certificates].
    #[arg(long, env = "SENSORS_SIM_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// mqtts://: PEM client certificate, for brokers that require one [default: none].
    #[arg(long, env = "SENSORS_SIM_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// mqtts://: PEM private key of --client-cert [default: none].
    #[arg(long, env = "SENSORS_SIM_CLIENT_KEY")]
    client_key: Option<PathBuf>,
    /// Shipped scenario name (huiji-red-alert, steady, faults) or a TOML path.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Simulated seconds per real second, or `max` (as fast as the broker accepts).
    #[arg(long, default_value = "60")]
    speed: Speed,
    /// Simulated start, RFC 3339 (default: the scenario's).
    #[arg(long)]
    start: Option<String>,
    /// Resume the scenario at this simulated time, RFC 3339: the clock begins here, the story
    /// stays anchored to the start, devices boot anew (default: begin at the start).
    #[arg(long)]
    resume_at: Option<String>,
    /// Simulated duration, e.g. `6h` (default: the scenario's; none = until Ctrl-C).
    #[arg(long)]
    duration: Option<String>,
    /// Same seed and options, same payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the ground truth (JSON) here when the run ends.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// `steady`: number of devices.
    #[arg(long)]
    devices: Option<u32>,
    /// Readings per second per device (interval = 1/rate s, at least 1 s).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value = "dust/v1")]
    topic_root: String,
    /// Prefix of MQTT client ids (run two simulators on one broker with different prefixes).
    #[arg(long, default_value = "sim")]
    client_prefix: String,
    /// Unacknowledged publishes per device connection.
    #[arg(long, default_value_t = 16)]
    inflight: u16,
    /// Spread the devices' first connections over this much real time, e.g. `60s`, as a
    /// fleet powering on does [default: 1s].
    #[arg(long)]
    power_on: Option<String>,
    /// Progress while running: a line on a terminal (`auto`), one JSON object per second on
    /// stdout (`json`, for a program driving the simulator), or `none`.
    #[arg(long, value_enum, default_value_t = ProgressOutput::Auto)]
    progress: ProgressOutput,
    /// HJ 212 platform `host:port` that the scenario's `hj212_tcp` devices connect to, e.g. a
    /// dustwatch started with `--hj212-listen`. Required when the scenario has such devices
    /// [default: none].
    #[arg(long, env = "SENSORS_SIM_HJ212_PLATFORM")]
    hj212_platform: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProgressOutput {
    Auto,
    Json,
    None,
}

fn parse_broker(url: &str) -> Result<BrokerUrl> {
    Ok(BrokerUrl::parse(url)?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // 10,000 devices are 10,000 sockets; a broker child inherits the limit too.
    sensors_sim::fd_limit::raise();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sensors_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a file or a journal.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    match cli.command {
        Some(Cmd::Scenarios) => {
            for (name, _) in SHIPPED {
                let s = Scenario::load(name)?;
                println!("{name:16} {}", s.description());
            }
            Ok(())
        }
        Some(Cmd::Registry { scenario, devices }) => {
            let s = Scenario::load(&scenario)?;
            let reg = s.registry_with(&sensors_sim::Overrides {
                devices,
                ..Default::default()
            });
            print!("{}", toml::to_string(&reg)?);
            Ok(())
        }
        None => runtime()?.block_on(run_sim(cli.run)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

async fn run_sim(a: RunArgs) -> Result<()> {
    let url = parse_broker(&a.broker)?;
    let tls = TlsSettings {
        ca_file: a.ca_file,
        client_cert: a.client_cert,
        client_key: a.client_key,
    };
    if !url.is_tls() && tls != TlsSettings::default() {
        bail!("--ca-file, --client-cert and --client-key need an mqtts:// broker URL");
    }
    let credentials = a
        .credentials
        .as_deref()
        .map(Credentials::load)
        .transpose()?
        .map(Arc::new);
    let scenario = Scenario::load(&a.scenario)?;
    let time =
        |flag: &str, value: &Option<String>| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
            value
                .as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s)
                        .with_context(|| format!("--{flag} `{s}` is not RFC 3339"))
                        .map(|t| t.with_timezone(&chrono::Utc))
                })
                .transpose()
        };
    let start = time("start", &a.start)?;
    let resume_at = time("resume-at", &a.resume_at)?;
    let power_on = a.power_on.as_deref().map(parse_duration).transpose()?;
    let duration = match &a.duration {
        Some(d) => Some(parse_duration(d)?),
        None => None,
    };
    if let Some(p) = &a.hj212_platform {
        // Devices would otherwise retry a malformed address with backoff forever.
        let ok = p
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            bail!("--hj212-platform `{p}`: expected host:port, e.g. 127.0.0.1:9212");
        }
    }
    if a.username.is_some() != a.password.is_some() {
        bail!("pass both --username and --password, or neither");
    }
    let options = SimOptions {
        host: url.host.clone(),
        port: url.port,
        username: a.username,
        password: a.password,
        credentials,
        tls: url.is_tls().then_some(tls),
        topic_root: TopicRoot::new(&a.topic_root),
        speed: a.speed,
        start,
        resume_at,
        duration,
        seed: a.seed,
        truth: a.truth,
        devices: a.devices,
        rate: a.rate,
        client_prefix: a.client_prefix,
        inflight: a.inflight,
        hj212_platform: a.hj212_platform.clone(),
        connect_spread: power_on.unwrap_or(SimOptions::default().connect_spread),
        ..Default::default()
    };
    let sim = Sim::new(scenario, options);
    let plan = sim.plan()?;
    eprintln!(
        "sensors-sim: scenario {} ({} sites, {} devices, interval {} s), speed {}, broker {}{}",
        plan.name,
        plan.sites.len(),
        plan.devices.len(),
        plan.interval_s,
        a.speed,
        a.broker,
        a.hj212_platform
            .as_deref()
            .map(|p| format!(", HJ 212 platform {p}"))
            .unwrap_or_default()
    );
    let stats = sim.stats();
    let shutdown = CancellationToken::new();
    let ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: devices send their offline status and disconnect");
            ctrl_c.cancel();
        }
    });
    let progress = match a.progress {
        ProgressOutput::Auto if std::io::stderr().is_terminal() => Some(tokio::spawn(
            progress_line(stats.clone(), plan.devices.len()),
        )),
        ProgressOutput::Json => Some(tokio::spawn(progress_json(stats.clone()))),
        _ => None,
    };
    let summary = sim.run(shutdown).await?;
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    println!("summary: {summary}");
    Ok(())
}

async fn progress_json(stats: Arc<Stats>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Ok(line) = serde_json::to_string(&stats.snapshot()) {
            println!("{line}");
        }
    }
}

async fn progress_line(stats: Arc<Stats>, devices: usize) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let acked = stats.acked.load(Ordering::Relaxed);
        eprint!(
            "\r\x1b[2Kconnected {}/{devices}  published {}  acked {}  buffered {}  dropped {}  {}/s",
            stats.connected.load(Ordering::Relaxed),
            stats.published.load(Ordering::Relaxed),
            acked,
            stats.buffered.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
            acked - last,
        );
        last = acked;
    }
}
