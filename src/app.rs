//! Wiring: the pieces of a running aggregator, startable from a test without the CLI
//! (mini-redis's `server::run(listener, shutdown)` pattern).

use crate::config::{load_registry, Config, ConfigError};
use crate::export::{self, ExportError};
use crate::ingest::hj212::Hj212Devices;
use crate::ingest::{self, IngestError};
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::rules::{self, Engine, Profile, ProfileError, RulesError, RulesHandle};
use crate::store::config::Backend;
use crate::store::{self, OpenStore, StoreError, StoreReader};
use crate::web;
use chrono::NaiveDate;
use dustwatch_protocol::{Registry, SiteInfo};
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Acting(#[from] crate::store::acting::ActingError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Forward(#[from] crate::hj212_forward::ForwardError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Ack(#[from] rules::acks::AckError),
    #[error("cannot listen on {addr}: {source}; pass --http to pick another address")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for HJ 212 devices on {addr}: {source}; set [hj212] listen to another address")]
    Hj212Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Commands(#[from] crate::commands::CommandError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Token(#[from] web::token::TokenError),
    #[error("task failed: {0}")]
    Join(String),
}

/// A running aggregator: ingest, store writer and HTTP server.
pub struct Aggregator {
    pub http_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub reader: Arc<dyn StoreReader>,
    pub write_token: Arc<String>,
    /// The write token was generated at start (show it to the operator); else configured.
    pub write_token_generated: bool,
    /// Where the HJ 212 TCP listener is bound, when `[hj212] listen` is set.
    pub hj212_addr: Option<SocketAddr>,
    pub rules: RulesHandle,
    ingest: ingest::Ingest,
    rules_thread: std::thread::JoinHandle<()>,
    publisher_task: tokio::task::JoinHandle<()>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    export: Option<export::Exporter>,
    commands_task: tokio::task::JoinHandle<()>,
    notifier: Option<crate::notify::Notifier>,
    forward: Option<crate::hj212_forward::Forwarder>,
}

impl Aggregator {
    /// Open the store, register `extra_sites` (and the registry file's), start ingest against
    /// `config.mqtt.url` and the HTTP server on `config.http.listen` (port 0 = a free port).
    pub async fn start(
        config: &Config,
        extra_sites: Vec<SiteInfo>,
        shutdown: CancellationToken,
    ) -> Result<Aggregator, AppError> {
        let extra = Registry {
            sites: extra_sites,
            ..Registry::default()
        };
        Aggregator::start_with(config, extra, shutdown).await
    }

    /// As [`Aggregator::start`], registering `extra`'s sites and HJ 212 `[[device]]` tables as
    /// well as the registry file's (the demo registers its simulated HJ 212 TCP devices this
    /// way). `extra.strict` is ignored: strictness is the registry file's.
    pub async fn start_with(
        config: &Config,
        extra: Registry,
        shutdown: CancellationToken,
    ) -> Result<Aggregator, AppError> {
        let registry = match &config.registry.file {
            Some(path) => Some(load_registry(path)?),
            None => None,
        };
        let strict = registry.as_ref().is_some_and(|r| r.strict);
        let mut sites = extra.sites;
        let mut hj212_devices = extra.devices;
        if let Some(r) = registry {
            sites.extend(r.sites);
            hj212_devices.extend(r.devices);
        }
        if let Some(influx) = &config.influx {
            influx.validate()?;
        }
        crate::hj212_forward::validate(&config.hj212.forward)?;
        let forward_queue = !config.hj212.forward.is_empty();
        let store_config = config.store.clone();
        let outbox = config.influx.is_some();
        let opened = tokio::task::spawn_blocking(move || {
            let mut opened = store::open(&store_config, strict, outbox, forward_queue)?;
            opened.writer.upsert_sites(&sites)?;
            Ok::<_, StoreError>(opened)
        })
        .await
        .map_err(|e| AppError::Join(e.to_string()))??;
        let OpenStore {
            writer: store,
            reader,
            alerts: alert_store,
        } = opened;
        let metrics = Arc::new(Metrics::default());

        let listener = TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| AppError::HttpBind {
                addr: config.http.listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| AppError::HttpBind {
            addr: config.http.listen,
            source,
        })?;

        let export = match &config.influx {
            Some(influx) => {
                let source: Box<dyn export::ExportSource> = match config.store.backend {
                    Backend::Sqlite => Box::new(export::OutboxSource::open(
                        &config.store.data_dir,
                        export::CURSOR,
                    )?),
                    Backend::Postgres => Box::new(export::PgOutboxSource::open(
                        &config.store.postgres.url,
                        export::CURSOR,
                    )?),
                };
                Some(export::start_with(
                    influx,
                    source,
                    metrics.clone(),
                    shutdown.clone(),
                )?)
            }
            None => None,
        };

        let forward = match config.hj212.forward.as_slice() {
            [] => None,
            targets => Some(crate::hj212_forward::start(
                targets,
                &hj212_devices,
                &config.store.data_dir,
                metrics.clone(),
                shutdown.clone(),
            )?),
        };

        let tz = config.time.zone.tz();
        let profile = match &config.rules.profile {
            Some(p) => Profile::load(p)?,
            None => Profile::default_profile(),
        };
        let (publisher, publisher_task) = Publisher::start(&config.mqtt, shutdown.clone())?;
        let command_log = {
            let store = config.store.clone();
            tokio::task::spawn_blocking(move || store::open_commands(&store))
                .await
                .map_err(|e| AppError::Join(e.to_string()))??
        };
        let (commands, commands_task) = crate::commands::Commands::start(
            &config.commands,
            command_log,
            publisher.clone(),
            metrics.clone(),
            shutdown.clone(),
        )?;
        let notifier = crate::notify::start(
            &config.notify,
            &config.store,
            reader.clone() as Arc<dyn StoreReader>,
            tz,
            metrics.clone(),
            shutdown.clone(),
        )?;
        let limits = Arc::new(crate::charts::data::profile_limits(&profile));
        let acting_store = {
            let store = config.store.clone();
            tokio::task::spawn_blocking(move || store::open_acting(&store))
                .await
                .map_err(|e| AppError::Join(e.to_string()))??
        };
        let acting =
            web::acting::Acting::new(Arc::new(acting_store), &profile, config.http.secure_cookies);
        {
            // A device's answer to a notice's stop-work command is the site's receipt.
            let reader = reader.clone();
            commands.record_notice_receipts(
                acting.store.clone(),
                Arc::new(move || crate::commands::office_now(reader.hot())),
            );
        }
        let mut engine = Engine::new(profile, tz);
        // An alert carrying an open order stays open until a re-inspection passes. On
        // PostgreSQL another instance may have given the order: the engine reads it when closing.
        engine.book_mut().set_holds(match config.store.backend {
            Backend::Sqlite => acting.store.holds(),
            Backend::Postgres => acting.store.shared_holds(),
        });
        {
            let reader = reader.clone();
            let (sites, levels, days) = tokio::task::spawn_blocking(move || {
                Ok::<_, StoreError>((
                    reader.sites()?,
                    reader.city_levels()?,
                    reader.days(
                        NaiveDate::from_ymd_opt(0, 1, 1).expect("a valid date"),
                        NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date"),
                    )?,
                ))
            })
            .await
            .map_err(|e| AppError::Join(e.to_string()))??;
            engine.seed_days(
                days.into_iter()
                    .filter(|d| !d.closed)
                    .map(|d| rules::task::day_stats(&d)),
            );
            engine.set_sites(sites.into_iter().filter(|s| s.registered).map(|s| s.info));
            for l in levels {
                engine.set_level(l.ts, l.level);
            }
        }
        let report_reader = reader.clone();
        let report_acting = acting.store.clone();
        let report_publisher = publisher.clone();
        let report_commands = commands.clone();
        let on_report: rules::task::ReportFn = Box::new(move |date| {
            match crate::report::daily(report_reader.as_ref(), date, tz) {
                Ok(report) if !report.has_data() => {
                    tracing::debug!(%date, "no data that day: no daily report");
                }
                Ok(mut report) => {
                    if let Err(e) = crate::report::add_actions(&mut report, &report_acting, tz) {
                        tracing::warn!(error = %e, %date, "the report goes out without the day's actions");
                    }
                    if let Err(e) = crate::report::add_commands(&mut report, tz, |from, to| {
                        report_commands.counts_between(from, to)
                    }) {
                        tracing::warn!(error = %e, %date, "the report goes out without the day's commands");
                    }
                    let topic = report_publisher.root().daily_report(&date.to_string());
                    let payload = serde_json::to_vec(&report).unwrap_or_default();
                    report_publisher.publish(topic, payload, true);
                    tracing::info!(%date, "daily report published");
                }
                Err(e) => tracing::error!(error = %e, %date, "daily report failed"),
            }
        });
        // Off the async workers: the engine reads its alerts back through the store's blocking
        // client (PostgreSQL's runs a runtime of its own and must not nest in ours).
        let rules_publisher = publisher.clone();
        let ownership = rules::task::Ownership {
            reader: reader.clone(),
            sites: match config.ingest.source {
                ingest::nats::Source::Mqtt => rules::task::Sites::All,
                ingest::nats::Source::Nats => {
                    let nats = config.nats.clone();
                    rules::task::Sites::Partitioned(Arc::new(move |site: &str| {
                        nats.partition_of(site)
                    }))
                }
            },
        };
        let pg_url =
            (config.store.backend == Backend::Postgres).then(|| config.store.postgres.url.clone());
        let (rules_handle, rules_thread) = tokio::task::spawn_blocking(move || {
            if let Some(url) = pg_url {
                // Several instances on one database: alert ids come from its sequence.
                let ids = crate::store::postgres::progress::PgAlertIds::open(&url)?;
                engine
                    .book_mut()
                    .set_id_source(rules::alert_ids::IdSource::shared(Box::new(ids)));
            }
            rules::task::start_owning(
                engine,
                alert_store,
                Some(ownership),
                Some(rules_publisher),
                Some(on_report),
                64,
            )
        })
        .await
        .map_err(|e| AppError::Join(e.to_string()))??;

        let hj212 = ingest::Hj212Setup {
            devices: Arc::new(Hj212Devices::new(&hj212_devices)),
            listener: match config.hj212.listen {
                Some(addr) => {
                    let listener = TcpListener::bind(addr)
                        .await
                        .map_err(|source| AppError::Hj212Bind { addr, source })?;
                    Some((listener, config.hj212.clone()))
                }
                None => None,
            },
        };
        // Rules off: readings are stored but never reach the engine.
        let committed = config
            .rules
            .enabled
            .then(|| Box::new(rules_handle.batch_sink()) as _);
        let mut alert_actions = rules::acks::AlertActions::local(rules_handle.clone());
        let ingest = match config.ingest.source {
            ingest::nats::Source::Mqtt => ingest::start(
                &config.mqtt,
                &config.ingest,
                store,
                committed,
                metrics.clone(),
                shutdown.clone(),
                hj212,
            )?,
            ingest::nats::Source::Nats => {
                let started = ingest::nats::start(
                    &config.nats,
                    &config.ingest,
                    ingest::nats::Setup {
                        root: dustwatch_protocol::TopicRoot::new(&config.mqtt.topic_root),
                        store,
                        committed,
                        hj212: hj212.devices,
                        metrics: metrics.clone(),
                        rules: config.rules.enabled.then(|| rules_handle.clone()),
                        hj212_listener: hj212.listener,
                    },
                    shutdown.clone(),
                )
                .await
                .map_err(IngestError::from)?;
                // Alerts of sites another instance judges are acknowledged there.
                alert_actions = rules::acks::AlertActions::clustered(
                    rules_handle.clone(),
                    started.client.clone(),
                    reader.clone(),
                );
                rules::acks::answer(started.client, rules_handle.clone(), shutdown.clone()).await?;
                ingest::Ingest {
                    task: started.task,
                    hj212: started.hj212,
                }
            }
        };
        let hj212_addr = ingest.hj212.as_ref().map(|l| l.addr);

        let token = web::token::resolve(
            config.http.write_token.as_deref(),
            config.http.token_file.as_deref(),
        )?;
        let write_token = Arc::new(token.token);
        let (hub_state, hub_state_rx) = tokio::sync::oneshot::channel();
        let live =
            web::live::LiveHub::start(hub_state_rx, config.http.max_streams, shutdown.clone());
        let state = web::AppState {
            reader: reader.clone(),
            metrics: metrics.clone(),
            offline_after_ms: config.time.offline_after_s * 1000,
            write_token: write_token.clone(),
            rules: rules_handle.clone(),
            alert_actions,
            publisher,
            commands,
            tz,
            limits,
            live,
            max_future_ms: i64::try_from(config.ingest.max_future_s.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            language: config.http.language,
            acting,
        };
        // The hub computes updates from the same state; it only ends with the shutdown.
        let _ = hub_state.send(state.clone());
        let router = web::router(state);
        let http = tokio::spawn(web::server::serve(
            listener,
            router,
            config.http.limits(),
            metrics.clone(),
            shutdown.clone(),
        ));
        Ok(Aggregator {
            http_addr,
            metrics,
            reader,
            write_token,
            write_token_generated: token.generated,
            hj212_addr,
            rules: rules_handle,
            ingest,
            rules_thread,
            publisher_task,
            http,
            export,
            commands_task,
            notifier,
            forward,
        })
    }

    /// Wait until every task stopped (after the shutdown token is cancelled).
    pub async fn wait(self) -> Result<(), AppError> {
        self.ingest
            .task
            .await
            .map_err(|e| AppError::Join(e.to_string()))?;
        if let Some(hj212) = self.ingest.hj212 {
            hj212
                .task
                .await
                .map_err(|e| AppError::Join(e.to_string()))?;
        }
        for task in self.forward.into_iter().flat_map(|f| f.tasks) {
            task.await.map_err(|e| AppError::Join(e.to_string()))?;
        }
        if let Some(export) = self.export {
            export
                .task
                .await
                .map_err(|e| AppError::Join(e.to_string()))?;
        }
        // The rules thread ends once the writer and the web let go of their handles.
        drop(self.rules);
        let http = self.http.await;
        let _ = tokio::task::spawn_blocking(move || self.rules_thread.join()).await;
        let _ = self.commands_task.await;
        if let Some(n) = self.notifier {
            let _ = tokio::task::spawn_blocking(move || n.thread.join()).await;
        }
        let _ = self.publisher_task.await;
        match http {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::Join(format!("http server: {e}"))),
            Err(e) => Err(AppError::Join(e.to_string())),
        }
    }
}
