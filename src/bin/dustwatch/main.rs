//! The `dustwatch` command line: parses flags and wires the pieces together; nothing else.

mod cli;
#[cfg(feature = "sim")]
mod demo;
mod device_command;
mod user;

#[cfg(feature = "sim")]
use anyhow::Context;
use anyhow::Result;
use clap::Parser;
use cli::*;
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_broker::EmbeddedBroker;
use tokio_util::sync::CancellationToken;

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
            let tz = config.time.zone.tz();
            let reader = open_reader(&config)?;
            let files =
                dustwatch::dashboard::render_from_store(reader.as_ref(), &dashboard, &out, tz)?;
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
                serde_json::to_vec(&dustwatch_protocol::CityLevel {
                    level,
                    ts: dustwatch_protocol::EventTime(ts),
                })?,
            )
            .await?;
            println!("city level {level} published on {url} (in force from {ts})");
        }
        Command::Device(args) => {
            tokio::task::spawn_blocking(move || device_command::run(args)).await??;
        }
        Command::User { command } => user::run(command, &mut config)?,
        Command::Report {
            date,
            format,
            store,
        } => {
            store.apply(&mut config);
            let tz = config.time.zone.tz();
            let reader = open_reader(&config)?;
            let mut report = dustwatch::report::daily(reader.as_ref(), date, tz)?;
            let acting = dustwatch::store::open_acting(&config.store)?;
            dustwatch::report::add_actions(&mut report, &acting, tz)?;
            let commands = dustwatch::store::open_commands(&config.store)?;
            dustwatch::report::add_commands(&mut report, tz, |from, to| {
                commands.counts_between(from, to)
            })?;
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
            rules,
            store,
        } => {
            store.apply(&mut config);
            if let Some(r) = rules {
                config.rules.profile = Some(r);
            }
            let text = std::fs::read_to_string(&truth)
                .with_context(|| format!("reading {}", truth.display()))?;
            let truth: sensors_sim::Truth = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a sensors-sim truth file", truth.display()))?;
            let reader = open_reader(&config)?;
            // The window rules' truth is what the profile's rules decide on perfect sensors.
            let profile = match &config.rules.profile {
                Some(p) => dustwatch::rules::Profile::load(p)?,
                None => dustwatch::rules::Profile::default_profile(),
            };
            let report = dustwatch::score::score(reader.as_ref(), &truth, &profile)?;
            match format {
                ScoreFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ScoreFormat::Table => print!("{}", dustwatch::score::table(&report)),
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
                "{} device logins, the aggregator's and the office's:
  \
                 {}  password file (hashed)
  \
                 {}  ACL
  \
                 {}  for mosquitto.conf
  \
                 {}  every password (mode 0600): devices, `sensors-sim --credentials`
  \
                 {}  the aggregator's [mqtt] login",
                w.credentials.devices.len(),
                w.password_file.display(),
                w.acl_file.display(),
                w.conf_file.display(),
                w.credentials_file.display(),
                w.aggregator_file.display(),
            );
        }
        Command::NatsMappings => {
            config.nats.validate()?;
            println!(
                "mappings {{
{}
}}",
                config.nats.server_mappings(&config.mqtt.topic_root)
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
            demo::demo(config, shutdown).await?;
        }
    }
    Ok(())
}

pub(crate) fn print_urls(agg: &Aggregator, broker: &str) {
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

/// A read-only view of the configured store (`[store] backend`).
fn open_reader(config: &Config) -> Result<Box<dyn dustwatch::store::StoreReader>> {
    if config.store.backend == dustwatch::store::config::Backend::Postgres {
        return Ok(Box::new(dustwatch::store::postgres::PgReader::open(
            &config.store.postgres,
            Default::default(),
        )?));
    }
    let db = config.store.data_dir.join("dustwatch.db");
    anyhow::ensure!(
        db.exists(),
        "no store at {} (pass --data DIR)",
        db.display()
    );
    Ok(Box::new(dustwatch::store::SqliteReader::open(
        &config.store.data_dir,
        Default::default(),
    )?))
}
