//! The broker boundary of the production path: a real Mosquitto run with the password file,
//! ACL and settings that `dustwatch broker-config mosquitto` writes from the registry. Devices
//! publish only as themselves, only the office sets the city level, anonymous clients are
//! refused, nobody can take the aggregator's client id, and the aggregator still stores
//! everything the devices send.

mod support;

use dustwatch::app::Aggregator;
use dustwatch::broker_config::{self, Identities};
use dustwatch::config::Config;
use dustwatch_mqtt::Credentials;
use dustwatch_protocol::registry::{DeviceInfo, Registry};
use dustwatch_protocol::{CityLevel, EventTime, Level, TopicRoot};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio_util::sync::CancellationToken;

/// Three steady devices, their registry, and Mosquitto with the generated boundary.
struct Boundary {
    broker: Mosquitto,
    credentials: Credentials,
    scenario: sensors_sim::Scenario,
    _dir: tempfile::TempDir,
}

fn sim_options(port: u16) -> sensors_sim::SimOptions {
    fleet::three_steady_devices(port, "acl-sim")
}

fn boundary() -> Option<Boundary> {
    if !Mosquitto::available() {
        return None;
    }
    let scenario = sensors_sim::Scenario::load("steady").expect("shipped scenario");
    let plan = sensors_sim::Sim::new(scenario.clone(), sim_options(1))
        .plan()
        .expect("plan");
    let table = |site: &str, id: &str| -> DeviceInfo {
        toml::from_str(&format!("site = \"{site}\"\nid = \"{id}\"")).expect("device table")
    };
    let mut devices: Vec<DeviceInfo> = plan
        .devices
        .iter()
        .map(|d| table(&d.site.info.id, &d.id))
        .collect();
    // One more device that the fleet does not run: the test's own client logs in as it.
    devices.push(table(&plan.devices[0].site.info.id, "spare"));
    let registry = Registry {
        devices,
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // The command as a user runs it.
    let registry_file = dir.path().join("registry.toml");
    std::fs::write(
        &registry_file,
        toml::to_string(&registry).expect("registry TOML"),
    )
    .expect("write registry");
    let out = dir.path().join("broker");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"))
        .args(["broker-config", "mosquitto", "--registry"])
        .arg(&registry_file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run dustwatch broker-config");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let credentials_file = out.join("credentials.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = std::fs::metadata(&credentials_file)
            .expect("credentials file")
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "credentials readable by the owner only"
        );
        // Test only: Mosquitto, started as root, reads its files as user `mosquitto`.
        for p in [dir.path(), &out, &out.join("passwd")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    let credentials = Credentials::load(&credentials_file).expect("credentials file");
    assert_eq!(credentials.devices.len(), registry.devices.len());
    let conf = std::fs::read_to_string(out.join("mosquitto.conf")).expect("conf snippet");
    let broker = Mosquitto::start_with_auth(&conf)?;
    Some(Boundary {
        broker,
        credentials,
        scenario,
        _dir: dir,
    })
}

/// Publish one QoS 1 message that the broker is expected to deny. Mosquitto acknowledges it and
/// then closes the connection (2.0.11); either way the message went out whole.
async fn publish_denied(port: u16, login: (&str, &str), topic: String, payload: Vec<u8>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    let mut opts = MqttOptions::new("forger", "127.0.0.1", port);
    opts.set_credentials(login.0, login.1);
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .expect("queue publish");
    let mut sent = false;
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(_))) => sent = true,
                Ok(Event::Incoming(Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(_) if sent => break,
                Err(e) => panic!("could not publish: {e}"),
            }
        }
    })
    .await;
    assert!(done.is_ok(), "no answer to the publish");
}

fn aggregator_config(b: &Boundary, data: &std::path::Path) -> Config {
    let a = &b.credentials.aggregator;
    let mut c = Config::default();
    c.mqtt.url = format!("mqtt://127.0.0.1:{}", b.broker.port());
    c.mqtt.client_id = a.username.clone();
    c.mqtt.username = Some(a.username.clone());
    c.mqtt.publisher_username = Some(a.publisher_username.clone());
    c.mqtt.password = Some(a.password.clone());
    c.http.listen = "127.0.0.1:0".parse().expect("literal");
    c.store.data_dir = data.to_path_buf();
    c
}

async fn run_fleet(b: &Boundary) -> u64 {
    let options = sensors_sim::SimOptions {
        credentials: Some(Arc::new(b.credentials.clone())),
        ..sim_options(b.broker.port())
    };
    let summary = sensors_sim::Sim::new(b.scenario.clone(), options)
        .run(CancellationToken::new())
        .await
        .expect("the fleet runs");
    assert!(summary.acked >= 3 * 59, "{summary:?}");
    summary.acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_publish_only_as_themselves_and_the_aggregator_stores_all_they_send() {
    let Some(b) = boundary() else { return };
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let agg = Aggregator::start(
        &aggregator_config(&b, data.path()),
        vec![],
        shutdown.clone(),
    )
    .await
    .expect("aggregator starts");
    wait_subscribed(&agg).await;
    // Every device logs in as itself (its own password from the credentials file).
    let acked = run_fleet(&b).await;
    wait_readings(&agg, acked).await;

    let root = TopicRoot::default();
    let me = b.credentials.devices.last().expect("the spare device");
    let other = &b.credentials.devices[1];
    let t = 1_483_286_400_000; // inside the fleet's hour
    let forged = vec![
        // As another device of the fleet.
        (
            root.reading(&other.site, &other.device),
            reading(t, 9_000, 9).encode(),
        ),
        // The city level.
        (
            root.city_level(),
            serde_json::to_vec(&CityLevel {
                level: Level::Red,
                ts: EventTime(t),
            })
            .expect("encode"),
        ),
    ];
    for (topic, payload) in forged {
        publish_denied(
            b.broker.port(),
            (&me.username, &me.password),
            topic,
            payload,
        )
        .await;
    }
    // Then a marker on its own topic: once it is stored, anything let through before it would
    // be stored too (one connection, one subscription, in order).
    let marker = vec![(
        root.reading(&me.site, &me.device),
        reading(t, 9_001, 9).encode(),
    )];
    publish_all_as(
        b.broker.port(),
        "forger",
        Some((&me.username, &me.password)),
        marker,
    )
    .await;
    wait_readings(&agg, acked + 1).await;
    let forged_stored = agg
        .reader
        .readings(&other.site, 0, i64::MAX)
        .expect("store readable")
        .iter()
        .any(|(_, r)| r.boot == 9);
    assert!(!forged_stored, "a device published as another device");
    let levels = agg.reader.city_levels().expect("store readable");
    assert!(
        !levels.iter().any(|l| l.level == Level::Red),
        "a device set the city level: {levels:?}"
    );

    // The office may: the same message with its login arrives.
    let office = &b.credentials.office;
    publish_all_as(
        b.broker.port(),
        "office-console",
        Some((&office.username, &office.password)),
        vec![(
            root.city_level(),
            serde_json::to_vec(&CityLevel {
                level: Level::Yellow,
                ts: EventTime(t),
            })
            .expect("encode"),
        )],
    )
    .await;
    fleet::wait_city_level(&agg, Level::Yellow, "the office's level stored").await;

    // The dashboard's level (office users, behind the write token) goes out through the
    // aggregator's publisher, under its own login, and comes back through ingest.
    let url = format!("http://127.0.0.1:{}/api/city/level", agg.http_addr.port());
    let token = agg.write_token.clone();
    tokio::task::spawn_blocking(move || {
        ureq::put(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({"level": "orange", "ts": t}).to_string())
            .expect("level accepted");
    })
    .await
    .expect("put");
    fleet::wait_city_level(&agg, Level::Orange, "the dashboard's level stored").await;
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_clients_and_a_taken_client_id_are_refused() {
    let Some(b) = boundary() else { return };
    let port = b.broker.port();
    let data = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let config = aggregator_config(&b, data.path());
    let agg = Aggregator::start(&config, vec![], shutdown.clone())
        .await
        .expect("aggregator starts");
    wait_subscribed(&agg).await;
    assert_eq!(agg.metrics.reconnects.load(Relaxed), 1);

    let anonymous = try_connect(port, "anon", None).await;
    assert!(anonymous.is_err(), "anonymous client accepted");
    let me = b.credentials.devices.last().expect("the spare device");
    let wrong = try_connect(port, "guess", Some((&me.username, "guess"))).await;
    assert!(wrong.is_err(), "wrong password accepted");

    // A device connecting under the aggregator's client ids (ingest and publisher) gets its own
    // username as client id instead: the aggregator is not kicked off.
    for id in [
        &config.mqtt.client_id,
        &format!("{}-pub", config.mqtt.client_id),
    ] {
        try_connect(port, id, Some((&me.username, &me.password)))
            .await
            .expect("the device's own login is accepted");
    }
    let root = TopicRoot::default();
    publish_all_as(
        port,
        &config.mqtt.client_id,
        Some((&me.username, &me.password)),
        vec![(
            root.reading(&me.site, &me.device),
            reading(1_483_286_400_000, 1, 1).encode(),
        )],
    )
    .await;
    wait_readings(&agg, 1).await;
    assert_eq!(
        agg.metrics.reconnects.load(Relaxed),
        1,
        "the aggregator lost its connection to a client using its client id"
    );
    shutdown.cancel();
    agg.wait().await.expect("clean stop");
}

/// The embedded broker beyond loopback: `dustwatch broker` refuses to listen there without
/// logins and says what to set.
#[test]
fn embedded_broker_beyond_loopback_without_logins_does_not_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"))
        .args(["broker", "--mqtt-listen", "0.0.0.0:0"])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run dustwatch broker");
    assert!(!out.status.success(), "it started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[broker] credentials") && stderr.contains("username and password"),
        "{stderr}"
    );
}

/// With the credentials file of `broker-config`, the embedded broker beyond loopback takes each
/// login in it and refuses anonymous clients and wrong passwords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_beyond_loopback_refuses_anonymous_clients() {
    let registry: Registry =
        toml::from_str("[[device]]\nsite = \"s1\"\nid = \"d1\"\n").expect("registry");
    let dir = tempfile::tempdir().expect("temp dir");
    let who = Identities {
        topic_root: TopicRoot::default(),
        aggregator_client_id: "dustwatch-aggregator".into(),
        office_username: "office".into(),
    };
    let written = broker_config::write(&registry, &who, dir.path()).expect("files written");
    let broker = dustwatch_broker::EmbeddedBroker::start(&dustwatch_broker::BrokerConfig {
        listen: "0.0.0.0:0".parse().expect("literal"),
        credentials: Some(written.credentials_file.clone()),
        ..Default::default()
    })
    .expect("starts with logins");
    let port = broker.addr().port();
    let device = &written.credentials.devices[0];
    assert!(
        try_connect(port, "anon", None).await.is_err(),
        "anonymous accepted"
    );
    assert!(
        try_connect(port, "guess", Some((&device.username, "guess")))
            .await
            .is_err(),
        "wrong password accepted"
    );
    try_connect(port, "d1", Some((&device.username, &device.password)))
        .await
        .expect("the device's login");
    let agg = written.credentials.aggregator_login();
    try_connect(port, "agg", Some((&agg.username, &agg.password)))
        .await
        .expect("the aggregator's login");
}

/// `dustwatch demo` with its embedded broker beyond loopback and no logins configured makes one
/// up, prints it once, and the broker refuses clients without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_beyond_loopback_generates_a_login() {
    let port = free_port();
    let (demo, line) = tokio::task::spawn_blocking(move || {
        DemoProcess::start_listening(&format!("0.0.0.0:{port}"), "with password")
    })
    .await
    .expect("demo starts");
    let password = line
        .split_whitespace()
        .skip_while(|w| *w != "password")
        .nth(1)
        .expect("the password follows")
        .to_string();
    assert_eq!(password.len(), 22, "128 random bits: {line}");
    wait_port(port);
    assert!(
        try_connect(port, "anon", None).await.is_err(),
        "anonymous accepted"
    );
    try_connect(port, "office", Some(("dustwatch", &password)))
        .await
        .expect("the printed login works");
    drop(demo);
}

/// Commands are the office's: a device's command to another device never arrives, the office's
/// does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_office_commands_devices() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let Some(b) = boundary() else { return };
    let port = b.broker.port();
    let root = TopicRoot::default();
    let me = b.credentials.devices.last().expect("the spare device");
    let target = &b.credentials.devices[0];
    let cmd_topic = root.cmd(&target.site, &target.device);

    // The target device listens to its commands.
    let mut opts = MqttOptions::new("target", "127.0.0.1", port);
    opts.set_credentials(target.username.clone(), target.password.clone());
    let (listener, mut events) = AsyncClient::new(opts, 10);
    listener
        .subscribe(cmd_topic.clone(), QoS::AtLeastOnce)
        .await
        .expect("queue subscribe");
    let subscribed = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("the target lost the broker: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("subscribed");

    let forged = br#"{"cmd":"set_interval","interval_s":3600}"#.to_vec();
    publish_denied(
        port,
        (&me.username, &me.password),
        cmd_topic.clone(),
        forged,
    )
    .await;
    let office = &b.credentials.office;
    let real = br#"{"cmd":"reboot"}"#.to_vec();
    publish_all_as(
        port,
        "office-console",
        Some((&office.username, &office.password)),
        vec![(cmd_topic, real.clone())],
    )
    .await;
    // One connection, in order: had the forged command passed, it would come first.
    let first = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => break p.payload.to_vec(),
                Ok(_) => {}
                Err(e) => panic!("the target lost the broker: {e}"),
            }
        }
    };
    let got = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("a command arrives");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&real),
        "the first command the device got"
    );
}

/// A device answers commands on its own reply topic only, and the aggregator's publisher (which
/// sends the dashboard's commands) may command devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_answer_only_as_themselves_and_the_publisher_commands_them() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let Some(b) = boundary() else { return };
    let port = b.broker.port();
    let root = TopicRoot::default();
    let me = b.credentials.devices.last().expect("the spare device");
    let target = &b.credentials.devices[0];

    // The office watches every reply and the target's commands.
    let office = &b.credentials.office;
    let mut opts = MqttOptions::new("reply-watch", "127.0.0.1", port);
    opts.set_credentials(office.username.clone(), office.password.clone());
    let (watcher, mut events) = AsyncClient::new(opts, 10);
    watcher
        .subscribe(root.all_devices("reply"), QoS::AtLeastOnce)
        .await
        .expect("queue subscribe");
    watcher
        .subscribe(root.cmd(&target.site, &target.device), QoS::AtLeastOnce)
        .await
        .expect("queue subscribe");
    let subscribed = async {
        let mut acks = 0;
        while acks < 2 {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => acks += 1,
                Ok(_) => {}
                Err(e) => panic!("the watcher lost the broker: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("subscribed");

    // A forged answer in the target's name is denied; the spare's own answer passes.
    publish_denied(
        port,
        (&me.username, &me.password),
        root.reply(&target.site, &target.device),
        br#"{"id":"forged","ok":true}"#.to_vec(),
    )
    .await;
    let own = br#"{"id":"mine","ok":true}"#.to_vec();
    publish_all_as(
        port,
        "spare-device",
        Some((&me.username, &me.password)),
        vec![(root.reply(&me.site, &me.device), own.clone())],
    )
    .await;
    let a = &b.credentials.aggregator;
    let cmd = br#"{"id":"c1","cmd":"reboot"}"#.to_vec();
    publish_all_as(
        port,
        "aggregator-publisher",
        Some((&a.publisher_username, &a.password)),
        vec![(root.cmd(&target.site, &target.device), cmd.clone())],
    )
    .await;
    // In order on one connection: had the forged reply passed, it would come first.
    let mut got = Vec::new();
    let two = async {
        while got.len() < 2 {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => got.push((p.topic, p.payload.to_vec())),
                Ok(_) => {}
                Err(e) => panic!("the watcher lost the broker: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), two)
        .await
        .expect("the reply and the command arrive");
    assert_eq!(
        got,
        vec![
            (root.reply(&me.site, &me.device), own),
            (root.cmd(&target.site, &target.device), cmd),
        ]
    );
}
