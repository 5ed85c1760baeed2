//! `dustwatch demo`: the embedded broker, the simulated fleet and the aggregator in one process.

use anyhow::{Context, Result};
use dustwatch::app::Aggregator;
use dustwatch::config::Config;
use dustwatch_broker::EmbeddedBroker;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

pub async fn demo(mut config: Config, shutdown: CancellationToken) -> Result<()> {
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
    crate::print_urls(&agg, &config.mqtt.url);
    crate::user::demo_users(&config.store.data_dir)?;

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
fn platform_addr(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}
