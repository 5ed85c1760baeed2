//! Cluster tests' parts: a NATS cluster with the aggregator's partition mapping, the store the
//! instances share (PostgreSQL when installed, else one SQLite file), `dustwatch serve`
//! instances ingesting from the cluster (`[ingest] source = "nats"`), and counts read straight
//! from the store.

use super::{free_port, metric, wait_port};
use dustwatch::ingest::nats::NatsConfig;
use dustwatch_testkit::process::serve_command;
pub use dustwatch_testkit::NatsCluster;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Start `nodes` nats-servers mapping device subjects into `partitions` partitions; None (skip)
/// when nats-server is not installed and not required.
pub fn nats_cluster(nodes: usize, partitions: u32) -> Option<NatsCluster> {
    let config = NatsConfig {
        partitions,
        ..Default::default()
    };
    NatsCluster::start(nodes, &config.server_mappings("dust/v1"))
}

/// The store the instances share: a PostgreSQL database when PostgreSQL is installed (testkit
/// starts it), else one SQLite file in a temporary directory (SQLite's WAL lets processes on
/// one machine share it, fencing table included).
pub struct SharedStore {
    pg: Option<(dustwatch_testkit::Postgres, String)>,
    pub dir: tempfile::TempDir,
}

impl SharedStore {
    pub fn new() -> SharedStore {
        let pg = dustwatch_testkit::Postgres::start().map(|pg| {
            let url = pg.database();
            // As docs/scale-out.md advises: an instance frozen inside a transaction holds its
            // partition's fence row; the server ends such a session so the new owner goes on.
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let db = url
                .rsplit('/')
                .next()
                .expect("a database in the URL")
                .to_string();
            c.batch_execute(&format!(
                "ALTER DATABASE {db} SET idle_in_transaction_session_timeout = '3s'"
            ))
            .expect("set idle_in_transaction_session_timeout");
            (pg, url)
        });
        SharedStore {
            pg,
            dir: tempfile::tempdir().expect("data dir"),
        }
    }

    pub fn kind(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// The `[store]` section of an instance's config.
    fn config_toml(&self) -> String {
        match &self.pg {
            Some((_, url)) => {
                format!("[store]\nbackend = \"postgres\"\n\n[store.postgres]\nurl = \"{url}\"\n")
            }
            None => String::new(),
        }
    }

    /// The PostgreSQL database's URL; None on the SQLite fallback.
    pub fn postgres_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|(_, url)| url.as_str())
    }

    /// (rows, distinct dedup keys) of the readings table.
    pub fn stored(&self) -> (u64, u64) {
        const COUNT: &str = "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT site, \
                             device, boot, seq FROM readings) AS k) FROM readings";
        match &self.pg {
            Some((_, url)) => {
                let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) else {
                    return (0, 0);
                };
                c.query_one(COUNT, &[])
                    .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
                    .unwrap_or((0, 0))
            }
            None => stored(self.dir.path()),
        }
    }
}

/// A `dustwatch serve` child process ingesting from a NATS cluster.
pub struct Instance {
    child: Option<Child>,
    pub name: String,
    pub http_port: u16,
    pub data: PathBuf,
}

impl Instance {
    /// Start instance `name` on the shared `store`, with `partitions` and a lease TTL of
    /// `ttl_s`; its alerts go to node 0's MQTT listener.
    pub fn start(
        cluster: &NatsCluster,
        name: &str,
        store: &SharedStore,
        partitions: u32,
        ttl_s: u64,
    ) -> Instance {
        Instance::start_with(cluster, name, store, partitions, ttl_s, "")
    }

    /// As [`Instance::start`], with `extra` TOML sections appended to its config.
    pub fn start_with(
        cluster: &NatsCluster,
        name: &str,
        store: &SharedStore,
        partitions: u32,
        ttl_s: u64,
        extra: &str,
    ) -> Instance {
        let data = store.dir.path();
        let servers = cluster.servers_toml();
        let replicas = cluster.len().min(3);
        let config = data.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[ingest]\nsource = \"nats\"\n\n[nats]\nservers = [{servers}]\n\
                 partitions = {partitions}\nreplicas = {replicas}\nlease_ttl_s = {ttl_s}\n\
                 instance = \"{name}\"\nfetch_max = 500\nack_wait_s = 10\nstream_max_bytes = 268435456\n\n{}\n{extra}",
                store.config_toml()
            ),
        )
        .expect("write config");
        let http_port = free_port();
        let log = std::fs::File::create(data.join(format!("{name}.log"))).expect("log file");
        let dustwatch = Path::new(env!("CARGO_BIN_EXE_dustwatch"));
        let child = serve_command(dustwatch, &config, cluster.ports(0).mqtt, http_port, data)
            // MQTT client ids are unique: a second session with the same id takes the first
            // one over.
            .args(["--client-id", &format!("dustwatch-{name}")])
            .env("RUST_LOG", "info,async_nats=warn")
            .stderr(log)
            .spawn()
            .expect("spawn dustwatch serve");
        wait_port(http_port);
        Instance {
            child: Some(child),
            name: name.to_string(),
            http_port,
            data: data.to_path_buf(),
        }
    }

    /// A metric's value; None while the instance does not answer (paused, or gone).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.http_port))
            .timeout(std::time::Duration::from_secs(5))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        metric(&body, name)
    }

    /// Partitions this instance holds now.
    pub fn owned(&self) -> u32 {
        self.metric("dustwatch_nats_partitions_owned")
            .unwrap_or(0.0) as u32
    }

    /// Wait until it holds exactly `n` partitions.
    pub fn wait_owned(&self, n: u32, secs: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while self.owned() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} does not own {n} partitions after {secs} s (owns {}); its log:\n{}",
                self.name,
                self.owned(),
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join(format!("{}.log", self.name))).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .expect("run kill")
                .success();
            assert!(ok, "kill {sig}");
        }
    }

    /// SIGSTOP: the process freezes with whatever it holds.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Instance::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGKILL: no chance to give anything back.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// (rows, distinct dedup keys) of the readings table of the SQLite store in `data`.
fn stored(data: &Path) -> (u64, u64) {
    let Ok(conn) = rusqlite::Connection::open(data.join("dustwatch.db")) else {
        return (0, 0);
    };
    conn.query_row(
        "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT site, device, boot, seq \
         FROM readings)) FROM readings",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap_or((0, 0))
}

/// Readings of `sites` sites × `devices` devices × `per_device`, seq from `first_seq`, as (topic,
/// payload): many sites so that every partition gets some.
pub fn site_payloads(
    sites: usize,
    devices: usize,
    first_seq: u64,
    per_device: u64,
) -> Vec<(String, Vec<u8>)> {
    let root = dustwatch_protocol::TopicRoot::default();
    let t0 = 1_483_228_800_000; // 2017-01-01T00:00:00Z
    let mut out = Vec::new();
    for seq in first_seq..first_seq + per_device {
        for s in 0..sites {
            for d in 0..devices {
                let r = super::reading(t0 + seq as i64 * 60_000, seq, 1);
                out.push((
                    root.reading(&format!("site-{s}"), &format!("dev{d}")),
                    r.encode(),
                ));
            }
        }
    }
    out
}

/// Publish at QoS 1 to a node's MQTT listener from a thread of its own; join to wait for the
/// broker's acknowledgement of every message. Waits first until the node takes MQTT sessions
/// (they live in JetStream: after a node left, the cluster may still be electing).
pub fn publish_in_background(
    port: u16,
    client_id: &str,
    payloads: Vec<(String, Vec<u8>)>,
) -> std::thread::JoinHandle<()> {
    let client_id = client_id.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while let Err(e) = super::try_connect(port, &client_id, None).await {
                assert!(
                    std::time::Instant::now() < deadline,
                    "MQTT listener on port {port} refuses sessions: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            super::publish_all(port, &client_id, payloads).await
        });
    })
}

/// Run `f` with a JetStream context on node 0, on a runtime of its own.
fn with_jetstream<T, F: std::future::Future<Output = T>>(
    cluster: &NatsCluster,
    f: impl FnOnce(async_nats::jetstream::Context) -> F,
) -> T {
    let url = cluster.client_urls()[0].clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let client = async_nats::connect(url.as_str()).await.expect("connect");
            f(async_nats::jetstream::new(client)).await
        })
}

/// The partitions whose lease `owner` holds now (read from the lease bucket).
pub fn partitions_of(cluster: &NatsCluster, owner: &str, partitions: u32) -> Vec<u32> {
    with_jetstream(cluster, |js| async move {
        let kv = js
            .get_key_value(NatsConfig::default().lease_bucket)
            .await
            .expect("lease bucket");
        let mut held = Vec::new();
        for p in 0..partitions {
            if let Ok(Some(entry)) = kv.entry(format!("partition.{p}")).await {
                if entry.value.as_ref() == owner.as_bytes() {
                    held.push(p);
                }
            }
        }
        held
    })
}

/// Messages fetched and not yet acknowledged on the partitions whose lease `owner` holds (read
/// from the lease bucket and the consumers' state on the cluster).
pub fn ack_pending_of(cluster: &NatsCluster, owner: &str) -> usize {
    let held = partitions_of(cluster, owner, 64);
    with_jetstream(cluster, |js| async move {
        let config = NatsConfig::default();
        let stream = js.get_stream(config.stream.clone()).await.expect("stream");
        let mut pending = 0;
        for p in held {
            let name = dustwatch::ingest::nats::consumer::consumer_name(&config, p);
            if let Ok(info) = stream.consumer_info(name).await {
                pending += info.num_ack_pending;
            }
        }
        pending
    })
}
