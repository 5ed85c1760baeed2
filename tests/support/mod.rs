//! Support for the aggregator's integration tests: real brokers (via dustwatch-testkit), the
//! real `dustwatch` binary as a child process, HTTP over real sockets, a plain MQTT publisher.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

pub use dustwatch_testkit::{embedded_broker, free_port, wait_port, Mosquitto};

use dustwatch_protocol::{EventTime, Reading, TopicRoot};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// GET a path; returns status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    match ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {path} on port {port}: {e}"),
    }
}

/// Value of an unlabelled metric (or a full `name{labels}` key) in Prometheus text.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Wait (at most 30 s) until the aggregator's ingest holds its subscription.
pub async fn wait_subscribed(agg: &dustwatch::app::Aggregator) {
    let m = agg.metrics.clone();
    tokio::task::spawn_blocking(move || {
        eventually(30, "subscribed", || {
            (m.mqtt_subscribed.load(std::sync::atomic::Ordering::Relaxed) == 1).then_some(())
        })
    })
    .await
    .expect("wait");
}

/// Wait (at most 60 s) until the aggregator's store holds exactly `n` readings.
pub async fn wait_readings(agg: &dustwatch::app::Aggregator, n: u64) {
    use dustwatch::store::StoreReader;
    let reader = agg.reader.clone();
    tokio::task::spawn_blocking(move || {
        eventually(60, &format!("{n} readings stored"), || {
            (reader.counts().ok()?.readings == n).then_some(())
        })
    })
    .await
    .expect("wait");
}

/// Poll `f` until it returns Some, at most `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`eventually`] for async tests: the runtime's timer waits, not the thread.
pub async fn eventually_async<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`eventually_async`] of a condition.
pub async fn until_async(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    eventually_async(secs, what, || f().then_some(())).await
}

/// The real `dustwatch serve` binary as a child process.
pub struct AggregatorProcess {
    child: Child,
    pub http_port: u16,
}

impl AggregatorProcess {
    pub fn serve(broker_port: u16, data: &Path) -> AggregatorProcess {
        Self::serve_with(broker_port, data, "")
    }

    /// [`AggregatorProcess::serve`] with a config file of `config_toml` (written into `data`).
    pub fn serve_with(broker_port: u16, data: &Path, config_toml: &str) -> AggregatorProcess {
        std::fs::create_dir_all(data).expect("data dir");
        let config = data.join("test-config.toml");
        std::fs::write(&config, config_toml).expect("write config");
        let http_port = free_port();
        let dustwatch = Path::new(env!("CARGO_BIN_EXE_dustwatch"));
        let child = dustwatch_testkit::process::serve_command(
            dustwatch,
            &config,
            broker_port,
            http_port,
            data,
        )
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dustwatch serve");
        let p = AggregatorProcess { child, http_port };
        p.wait_subscribed();
        p
    }

    /// Wait until the broker confirmed our subscriptions.
    pub fn wait_subscribed(&self) {
        wait_port(self.http_port);
        eventually(30, "aggregator subscribed", || {
            let (_, body) = http_get(self.http_port, "/metrics");
            (metric(&body, "dustwatch_mqtt_subscribed") == Some(1.0)).then_some(())
        });
    }

    pub fn metrics(&self) -> String {
        http_get(self.http_port, "/metrics").1
    }

    /// Ctrl-C, as an operator stops it; returns once it exited, with its exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT");
        // Bounded, so a wedged process fails the test instead of hanging it.
        eventually(60, "the aggregator to exit after Ctrl-C", || {
            self.child.try_wait().expect("wait")
        })
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AggregatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reading with values derived from its sequence number, so content can be checked.
pub fn reading(ts: i64, seq: u64, boot: u32) -> Reading {
    Reading {
        ts: EventTime(ts),
        seq,
        boot,
        interval_s: 60,
        pm25: Some((seq % 500) as f64),
        pm10: Some((seq % 700) as f64 + 1.0),
        noise_dba: Some(55.0),
        ..Default::default()
    }
}

/// Publish `payloads` (topic, bytes) at QoS 1 and return once the broker acknowledged each.
pub async fn publish_all(port: u16, client_id: &str, payloads: Vec<(String, Vec<u8>)>) {
    publish_all_as(port, client_id, None, payloads).await
}

/// [`publish_all`] logged in with a username and password.
pub async fn publish_all_as(
    port: u16,
    client_id: &str,
    login: Option<(&str, &str)>,
    payloads: Vec<(String, Vec<u8>)>,
) {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(100);
    // Room for the oversized messages the tests send on purpose.
    opts.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let total = payloads.len();
    let publisher = tokio::spawn(async move {
        for (topic, payload) in payloads {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .expect("queue publish");
        }
        client
    });
    let mut acked = 0;
    while acked < total {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => panic!("publisher lost the broker: {e}"),
        }
    }
    let client = publisher.await.expect("publisher task");
    let _ = client.disconnect().await;
    while let Ok(ev) = eventloop.poll().await {
        if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
            break;
        }
    }
}

/// Readings for `devices` devices of site `site`, `per_device` each, as (topic, payload).
pub fn fleet_payloads(site: &str, devices: usize, per_device: u64) -> Vec<(String, Vec<u8>)> {
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000; // 2017-01-01T00:00:00Z
    let mut out = Vec::new();
    for seq in 0..per_device {
        for d in 0..devices {
            let r = reading(t0 + seq as i64 * 60_000, seq, 1);
            out.push((root.reading(site, &format!("dev{d}")), r.encode()));
        }
    }
    out
}

pub mod acting;
pub mod browser;
pub mod cluster;
pub mod fleet;
pub mod hj212;
pub mod http;
pub mod sinks;

/// The real `dustwatch demo` (embedded broker, simulated fleet, aggregator, dashboard) as a child
/// process on free ports, with a known write token.
pub struct DemoProcess {
    child: Child,
    pub http_port: u16,
    pub token: String,
    _dir: tempfile::TempDir,
}

impl DemoProcess {
    pub fn start(speed: f64) -> DemoProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, speed)
    }

    /// Start in `dir` (its `data/` is the store): a second start in the same dir continues.
    pub fn start_in(dir: tempfile::TempDir, speed: f64) -> DemoProcess {
        let mqtt = format!("127.0.0.1:{}", free_port());
        Self::spawn(dir, speed, &mqtt, Stdio::null())
    }

    /// Start with the embedded broker on `mqtt_listen` (e.g. beyond loopback); returns the first
    /// line the demo prints that contains `needle`.
    pub fn start_listening(mqtt_listen: &str, needle: &str) -> (DemoProcess, String) {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut p = Self::spawn(dir, 1.0, mqtt_listen, Stdio::piped());
        let stdout = p.child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let needle_owned = needle.to_string();
        // Reads on to the end: the demo keeps printing, and a closed pipe would stop it.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains(&needle_owned) {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the demo did not print `{needle}` within 30 s"));
        (p, line)
    }

    /// Start with more settings after `[http]` in its config file (tables of their own, e.g.
    /// `[notify]`); its stdout goes to `stdout`.
    pub fn start_configured(speed: f64, extra_config: &str, stdout: Stdio) -> DemoProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mqtt = format!("127.0.0.1:{}", free_port());
        Self::spawn_with(dir, speed, &mqtt, stdout, extra_config)
    }

    fn spawn(dir: tempfile::TempDir, speed: f64, mqtt_listen: &str, stdout: Stdio) -> DemoProcess {
        Self::spawn_with(dir, speed, mqtt_listen, stdout, "")
    }

    fn spawn_with(
        dir: tempfile::TempDir,
        speed: f64,
        mqtt_listen: &str,
        stdout: Stdio,
        extra_config: &str,
    ) -> DemoProcess {
        let token = "demo-test-token".to_string();
        let config = dir.path().join("dustwatch.toml");
        std::fs::write(
            &config,
            format!("[http]\nwrite_token = \"{token}\"\n{extra_config}"),
        )
        .expect("config");
        let http_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_dustwatch"))
            .arg("--config")
            .arg(&config)
            .args([
                "demo",
                "--speed",
                &speed.to_string(),
                "--http",
                &format!("127.0.0.1:{http_port}"),
                "--mqtt-listen",
                mqtt_listen,
                "--data",
            ])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dustwatch demo");
        let p = DemoProcess {
            child,
            http_port,
            token,
            _dir: dir,
        };
        wait_port(http_port);
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// Ctrl-C, as a user stops it; returns its directory once it exited cleanly.
    pub fn interrupt(mut self) -> tempfile::TempDir {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT");
        let exit = self.child.wait().expect("wait for the demo");
        assert!(exit.success(), "the demo exits cleanly on Ctrl-C: {exit}");
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self._dir, dir)
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the broker answers a CONNECT from `client_id` with `login`: `Ok(())` when accepted (the
/// connection is closed again at once), else the broker's refusal or the connection error.
pub async fn try_connect(
    port: u16,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<(), String> {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    break match ack.code {
                        rumqttc::ConnectReturnCode::Success => Ok(()),
                        code => Err(format!("{code:?}")),
                    }
                }
                Ok(_) => {}
                Err(e) => break Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no CONNACK within 10 s".into()));
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await;
    answer
}
