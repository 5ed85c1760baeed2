//! The simulated fleet against a test broker: options for a quick run, and waiting until a
//! city level some client published is in the store.

use dustwatch::app::Aggregator;
use dustwatch_protocol::Level;
use std::time::Duration;

/// Simulated devices against the broker on `port`, as fast as they can go, all connecting at
/// once and reconnecting quickly, client ids starting with `prefix`.
pub fn sim_options(port: u16, prefix: &str) -> sensors_sim::SimOptions {
    sensors_sim::SimOptions {
        port,
        speed: sensors_sim::Speed::Max,
        client_prefix: prefix.into(),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        connect_spread: Duration::ZERO,
        ..Default::default()
    }
}

/// Three devices of the shipped `steady` scenario for an hour of event time.
pub fn three_steady_devices(port: u16, prefix: &str) -> sensors_sim::SimOptions {
    sensors_sim::SimOptions {
        devices: Some(3),
        duration: Some(Duration::from_secs(3600)),
        ..sim_options(port, prefix)
    }
}

/// `devices` devices of the `steady` scenario for a week of event time at ten times real time,
/// so that commands sent during the run reach them and are answered.
pub fn answering_devices(port: u16, prefix: &str, devices: u32) -> sensors_sim::SimOptions {
    sensors_sim::SimOptions {
        devices: Some(devices),
        duration: Some(Duration::from_secs(7 * 86_400)),
        speed: sensors_sim::Speed::Factor(10.0),
        ..sim_options(port, prefix)
    }
}

/// Wait until the aggregator's store holds the city level `level` (`what` names it in the
/// failure).
pub async fn wait_city_level(agg: &Aggregator, level: Level, what: &str) {
    let reader = agg.reader.clone();
    let what = what.to_string();
    tokio::task::spawn_blocking(move || {
        super::eventually(30, &what, || {
            let levels = reader.city_levels().ok()?;
            levels.iter().any(|l| l.level == level).then_some(())
        })
    })
    .await
    .expect("wait");
}
