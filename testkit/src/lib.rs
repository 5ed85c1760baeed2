//! Real things on free ports for integration tests, cleaned up on drop.
//!
//! - [`embedded_broker`]: rumqttd in this process (always available).
//! - [`Mosquitto`]: the reference external broker, started as a child process when installed.
//!   When `DUSTWATCH_REQUIRE_MOSQUITTO` is set (CI sets it), a missing Mosquitto is a failure,
//!   never a skip.
//! - [`VictoriaMetrics`]: a server taking the InfluxDB v2 write API, as a child process with a
//!   temporary data directory when installed (Debian `victoria-metrics`); required when
//!   `DUSTWATCH_REQUIRE_VM` is set.
//! - [`NatsCluster`]: N `nats-server` nodes (JetStream, cluster routes, MQTT listener); required
//!   when `DUSTWATCH_REQUIRE_NATS` is set.
//! - [`Postgres`]: a PostgreSQL server in a temporary directory when installed; its tests run
//!   only when `DUSTWATCH_REQUIRE_POSTGRES` is set (then a missing server is a failure).

pub mod nats;
mod postgres;
pub mod process;

pub use dustwatch_broker::mosquitto_binary;
use dustwatch_broker::{BrokerConfig, EmbeddedBroker};
pub use nats::NatsCluster;
pub use postgres::{postgres_bin_dir, postgres_required, Postgres};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free loopback port")
}

/// Start an embedded rumqttd on a free port. It lives until the test process exits.
pub fn embedded_broker() -> EmbeddedBroker {
    EmbeddedBroker::start(&BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .expect("embedded broker starts on a free port")
}

/// A broker a test can talk to: its name (for messages) and port.
#[derive(Debug, Clone)]
pub struct BrokerUnderTest {
    pub name: &'static str,
    pub port: u16,
}

/// True when CI demands Mosquitto-backed tests to run.
pub fn mosquitto_required() -> bool {
    process::required("DUSTWATCH_REQUIRE_MOSQUITTO")
}

/// A Mosquitto child process on a loopback port with test-friendly limits.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    setup: MosquittoSetup,
}

/// How a test's Mosquitto is set up beyond the defaults (anonymous, plain TCP, no persistence).
#[derive(Debug, Clone, Default)]
pub struct MosquittoSetup {
    /// Save sessions on a graceful stop and load them on restart.
    pub persistent: bool,
    /// A TLS listener instead of plain TCP.
    pub tls: Option<TlsListener>,
    /// Configuration lines that replace `allow_anonymous true` (e.g. the snippet
    /// `dustwatch broker-config` writes: password file, ACL, no anonymous clients).
    pub auth: Option<String>,
}

/// Certificate files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by `ca`.
    pub require_certificate: bool,
}

impl TlsListener {
    /// The server side of `pki`.
    pub fn from_pki(pki: &TestPki, require_certificate: bool) -> TlsListener {
        TlsListener {
            ca: pki.ca.clone(),
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
            require_certificate,
        }
    }
}

impl Mosquitto {
    /// Start Mosquitto on a free port. Returns None (skip) when it is not installed, and panics
    /// when it is required but missing.
    pub fn start() -> Option<Mosquitto> {
        Self::start_setup(MosquittoSetup::default())
    }

    /// Like [`Mosquitto::start`], with persistence on: a graceful [`Mosquitto::stop`] saves
    /// sessions, subscriptions and queued QoS 1 messages, and [`Mosquitto::restart`] loads them.
    pub fn start_persistent() -> Option<Mosquitto> {
        Self::start_setup(MosquittoSetup {
            persistent: true,
            ..Default::default()
        })
    }

    /// Start with a TLS listener (server certificate of `pki`).
    pub fn start_tls(pki: &TestPki, require_certificate: bool) -> Option<Mosquitto> {
        Self::start_setup(MosquittoSetup {
            tls: Some(TlsListener::from_pki(pki, require_certificate)),
            ..Default::default()
        })
    }

    /// Start with `auth` in place of `allow_anonymous true`.
    pub fn start_with_auth(auth: &str) -> Option<Mosquitto> {
        Self::start_setup(MosquittoSetup {
            auth: Some(auth.to_string()),
            ..Default::default()
        })
    }

    /// Start as `setup` says. Returns None (skip) when Mosquitto is not installed, and panics
    /// when it is required but missing.
    pub fn start_setup(setup: MosquittoSetup) -> Option<Mosquitto> {
        if !Self::available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir for mosquitto config");
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir,
            setup,
        };
        m.spawn();
        Some(m)
    }

    /// Whether Mosquitto tests can run: false (skip, with a message) when it is not installed;
    /// panics when it is required but missing. For preparing things before a start.
    pub fn available() -> bool {
        process::installed_or_skip(
            mosquitto_binary().is_some(),
            "mosquitto",
            "DUSTWATCH_REQUIRE_MOSQUITTO",
            "mosquitto not installed: skipping the Mosquitto part of this test",
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn under_test(&self) -> BrokerUnderTest {
        BrokerUnderTest {
            name: "mosquitto",
            port: self.port,
        }
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).expect("write mosquitto.conf");
        // Queue and inflight limits off: the default max_queued_messages 1000 drops QoS 1
        // messages to a busy subscriber. Log to stdout: as root it drops to user mosquitto.
        let persistence = if self.setup.persistent {
            // Started as root, Mosquitto drops to user `mosquitto`: let it write its database.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(
                    self.dir.path(),
                    std::fs::Permissions::from_mode(0o777),
                );
            }
            format!(
                "persistence true\npersistence_location {}/\nautosave_interval 0\n",
                self.dir.path().display()
            )
        } else {
            "persistence false\n".to_string()
        };
        let tls = match &self.setup.tls {
            None => String::new(),
            Some(t) => format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display(),
                t.require_certificate
            ),
        };
        let auth = self
            .setup
            .auth
            .clone()
            .unwrap_or_else(|| "allow_anonymous true\n".into());
        write!(
            f,
            "listener {port} 127.0.0.1\n{tls}{auth}\n{persistence}\
             max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 0\n\
             log_dest stdout\nlog_type error\nlog_type warning\n",
            port = self.port
        )
        .expect("write mosquitto.conf");
        let bin = mosquitto_binary().expect("checked in start");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        wait_port(self.port);
    }

    /// Kill the broker (as a crash would); the port stays reserved for [`Mosquitto::restart`].
    pub fn kill(&mut self) {
        process::kill(self.child.take());
    }

    /// Stop gracefully (SIGTERM): a persistent broker saves its state first.
    pub fn stop(&mut self) {
        process::stop(self.child.take(), libc::SIGTERM);
    }

    /// Start again on the same port. Without persistence sessions are gone; after a graceful
    /// [`Mosquitto::stop`] a persistent broker restores them. A still-running broker is killed.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A test certificate authority with a server certificate for 127.0.0.1 / localhost, a client
/// certificate, and a second, unrelated CA (for "the wrong CA is refused"), made with the openssl
/// command-line tool in a temporary directory. Files are readable by all: Mosquitto, started as
/// root, reads them as user `mosquitto`.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir for test certificates");
        let d = dir.path();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                .expect("open the certificate dir to the mosquitto user");
        }
        let cnf = d.join("openssl.cnf");
        std::fs::write(
            &cnf,
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = dustwatch test CA\n\
             [ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n\
             [server]\nbasicConstraints = CA:FALSE\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
             keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n\
             [client]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = clientAuth\n",
        )
        .expect("write openssl.cnf");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("run openssl (the test certificates need the openssl command)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                name,
            ])
        };
        let cnf = cnf.to_str().expect("temp paths are UTF-8");
        for ca in ["ca", "other-ca"] {
            key(&format!("{ca}.key"));
            openssl(&[
                "req",
                "-x509",
                "-config",
                cnf,
                "-extensions",
                "ca",
                "-key",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
            ]);
        }
        for (name, cn) in [("server", "localhost"), ("client", "dustwatch-test-client")] {
            key(&format!("{name}.key"));
            openssl(&[
                "req",
                "-new",
                "-config",
                cnf,
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                &format!("{name}.csr"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                cnf,
                "-extensions",
                name,
                "-out",
                &format!("{name}.pem"),
            ]);
        }
        #[cfg(unix)]
        for entry in std::fs::read_dir(d)
            .expect("list certificate dir")
            .flatten()
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644));
        }
        TestPki {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            _dir: dir,
        }
    }
}

/// Wait until something accepts on 127.0.0.1:port (at most 10 s).
pub fn wait_port(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {addr} after 10 s");
}

/// Where the victoria-metrics binary is, if installed.
pub fn victoria_metrics_binary() -> Option<PathBuf> {
    [
        "/usr/bin/victoria-metrics",
        "/usr/local/bin/victoria-metrics",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// True when CI demands VictoriaMetrics-backed tests to run.
pub fn victoria_metrics_required() -> bool {
    process::required("DUSTWATCH_REQUIRE_VM")
}

/// A VictoriaMetrics child process on a loopback port with a temporary data directory. It takes
/// InfluxDB line protocol at `/api/v2/write` (org and bucket ignored, metric name
/// `<measurement>_<field>`) and gives it back at `/api/v1/export`.
pub struct VictoriaMetrics {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Start on a free port. Returns None (skip) when not installed; panics when it is required
    /// but missing.
    pub fn start() -> Option<VictoriaMetrics> {
        if !process::installed_or_skip(
            victoria_metrics_binary().is_some(),
            "victoria-metrics",
            "DUSTWATCH_REQUIRE_VM",
            "victoria-metrics not installed: skipping this test",
        ) {
            return None;
        }
        let mut vm = VictoriaMetrics {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir for victoria-metrics"),
        };
        vm.spawn();
        Some(vm)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL, e.g. for `[influx] url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = victoria_metrics_binary().expect("checked in start");
        // Test data is stamped in 2017: keep everything (default retention is one month).
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn victoria-metrics");
        self.child = Some(child);
        wait_port(self.port);
    }

    /// Stop gracefully (SIGTERM: VictoriaMetrics flushes what it accepted), keeping the data
    /// directory and the port for [`VictoriaMetrics::restart`].
    pub fn stop(&mut self) {
        process::stop(self.child.take(), libc::SIGTERM);
    }

    /// SIGKILL, as a crash would (samples not yet flushed may be lost).
    pub fn kill(&mut self) {
        process::kill(self.child.take());
    }

    /// Start again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        self.kill();
    }
}
