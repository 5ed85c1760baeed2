//! `dustwatch-bench`: performance figures with ratios to their targets, each measured against
//! its own baseline in one run (the machines are shared and noisy: never one figure alone).
//! `cargo run --release -p dustwatch-bench -- charts`, `-- ingest` or `-- store`.

mod dashboard;
mod ingest;
mod probe;
mod store;
mod table;

use clap::Parser;

/// Performance figures of dustwatch with ratios to their targets, from one run.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// What to measure.
    #[arg(value_enum, default_value_t = What::Charts)]
    what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum What {
    /// Charts, the overview and live updates under load.
    Charts,
    /// Ingest rate against a plain subscriber, publish-to-commit latency, memory, rules' cost.
    Ingest,
    /// The store writer alone: SQLite against PostgreSQL.
    Store,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let work = tempfile::Builder::new()
        .prefix("dustwatch-bench-")
        .tempdir()?;
    match cli.what {
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
    }
    Ok(())
}
