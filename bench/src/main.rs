//! `dustwatch-bench`: performance figures with ratios to their targets, each measured against
//! its own baseline in one run (the machines are shared and noisy: never one figure alone).
//! `cargo run --release -p dustwatch-bench -- charts`, `-- ingest`, `-- sim` or `-- store`.

mod city;
mod dashboard;
mod failover;
mod ingest;
mod probe;
mod sim;
mod store;
mod table;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Performance figures of dustwatch with ratios to their targets, from one run.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// What to measure [default: charts].
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Charts, the overview and live updates under load.
    Charts,
    /// Ingest rate against a plain subscriber, publish-to-commit latency, memory, rules' cost.
    Ingest,
    /// The store writer alone: SQLite against PostgreSQL.
    Store,
    /// The simulator: 10,000 devices in real time (CPU, memory), and `--speed max` against a
    /// plain rumqttc publisher loop.
    Sim(SimArgs),
    /// The simulator at city scale: 100,000 devices, each with its own MQTT connection, at one
    /// reading a minute, over several simulator processes and brokers.
    City(CityArgs),
    /// One instance against two on the same 3-node NATS cluster and PostgreSQL: readings stored
    /// per second, and the failover time after a `kill -9`, as ratios from one run.
    Failover(FailoverArgs),
    /// Run the embedded broker until killed (`sim`'s child process).
    #[command(hide = true)]
    Broker {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Use this broker (`mqtt://host:port`) instead of starting one in a child process
    /// (Mosquitto when installed, else the embedded rumqttd).
    #[arg(long)]
    broker: Option<String>,
    /// Start the embedded rumqttd even when Mosquitto is installed.
    #[arg(long)]
    embedded: bool,
    #[arg(long, default_value_t = 10_000)]
    devices: u32,
    /// Seconds over which the steady devices power on (connect).
    #[arg(long, default_value_t = 5)]
    power_on: u64,
    /// Seconds of warm-up before the steady phase is measured.
    #[arg(long, default_value_t = 15)]
    warmup: u64,
    /// Seconds measured in the steady phase.
    #[arg(long, default_value_t = 20)]
    measure: u64,
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Messages per side and round of the throughput phase.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Throughput rounds, each a plain rumqttc loop then the simulator at --speed max.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Also print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CityArgs {
    #[arg(long, default_value_t = 100_000)]
    devices: u32,
    /// Devices per simulator process, below the open-file limit of one process (and of a
    /// broker started here).
    #[arg(long, default_value_t = 19_000)]
    per_process: u32,
    /// A broker's MQTT URL (repeat for several, e.g. each NATS node's MQTT listener); the
    /// simulator processes take them in turn [default: one Mosquitto per simulator process].
    #[arg(long = "broker")]
    brokers: Vec<String>,
    /// Seconds between a device's readings.
    #[arg(long, default_value_t = 60)]
    interval: u32,
    /// Seconds over which the fleet powers on.
    #[arg(long, default_value_t = 60)]
    power_on: u64,
    /// Seconds measured once the fleet is in.
    #[arg(long, default_value_t = 120)]
    measure: u64,
    /// The simulator executable [default: `sensors-sim` beside this one].
    #[arg(long)]
    sim: Option<std::path::PathBuf>,
    /// Also print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct FailoverArgs {
    /// Readings in each backlog the instances drain.
    #[arg(long, default_value_t = 100_000)]
    readings: u64,
    #[arg(long, default_value_t = 64)]
    sites: u32,
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Lease TTL of the instances, seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u64,
    /// The dustwatch executable [default: `dustwatch` beside this one].
    #[arg(long)]
    dustwatch: Option<std::path::PathBuf>,
    /// Also print the figures as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // Thousands of devices are thousands of sockets; a broker child inherits the limit too.
    sensors_sim::fd_limit::raise();
    match cli.what {
        // A plain thread: the broker is the whole process.
        Some(What::Broker { listen }) => sim::run_embedded_broker(listen),
        what => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(measure(what.unwrap_or(What::Charts))),
    }
}

async fn measure(what: What) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("dustwatch-bench-")
        .tempdir()?;
    match what {
        What::Ingest => {
            let table = ingest::run(work.path(), &ingest::Options::default()).await?;
            print!("{table}");
        }
        What::Store => print!("{}", store::run(work.path())?),
        What::Charts => {
            for figure in dashboard::run(work.path()).await? {
                println!("{figure}");
            }
        }
        What::Sim(a) => run_sim(a).await?,
        What::City(a) => run_city(a).await?,
        What::Failover(a) => {
            let dustwatch = match a.dustwatch {
                Some(p) => p,
                None => std::env::current_exe()?.with_file_name("dustwatch"),
            };
            if !dustwatch.exists() {
                bail!(
                    "{} not found: build it (`cargo build --release -p dustwatch`) or pass --dustwatch",
                    dustwatch.display()
                );
            }
            let report = failover::run(
                work.path(),
                &failover::FailoverOptions {
                    readings: a.readings,
                    sites: a.sites,
                    partitions: a.partitions,
                    ttl_s: a.ttl,
                    dustwatch,
                },
            )
            .await?;
            report.print();
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        }
        What::Broker { .. } => unreachable!("run before the runtime starts"),
    }
    Ok(())
}

async fn run_sim(a: SimArgs) -> anyhow::Result<()> {
    let mut child = None;
    let (host, port, broker) = match &a.broker {
        Some(b) => {
            let url = dustwatch_mqtt::BrokerUrl::parse(b)?;
            if url.is_tls() {
                bail!("the benchmark measures plain MQTT: pass an mqtt:// broker");
            }
            (url.host, url.port, format!("external {b}"))
        }
        None => {
            let p = sim::BrokerProcess::start(a.embedded)?;
            let (port, name) = (p.port(), p.name());
            child = Some(p);
            ("127.0.0.1".to_string(), port, name.to_string())
        }
    };
    let o = sim::BenchOptions {
        host,
        port,
        broker,
        devices: a.devices,
        power_on: Duration::from_secs(a.power_on),
        warmup: Duration::from_secs(a.warmup),
        measure: Duration::from_secs(a.measure),
        connections: a.connections,
        messages: a.messages,
        rounds: a.rounds,
        ..Default::default()
    };
    let result = sim::run(&o).await;
    drop(child);
    let report = result?;
    report.print();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

async fn run_city(a: CityArgs) -> anyhow::Result<()> {
    let sim_exe = match a.sim {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("sensors-sim"),
    };
    if !sim_exe.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p sensors-sim`) or pass --sim",
            sim_exe.display()
        );
    }
    let report = city::run(&city::CityOptions {
        devices: a.devices,
        per_process: a.per_process,
        brokers: a.brokers,
        interval_s: a.interval,
        power_on: Duration::from_secs(a.power_on),
        measure: Duration::from_secs(a.measure),
        sim_exe,
    })
    .await?;
    report.print();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
