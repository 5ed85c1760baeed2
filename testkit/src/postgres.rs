//! A PostgreSQL server for tests: `initdb` into a temporary directory and `postgres` on a free
//! loopback port, stopped and removed on drop. PostgreSQL refuses to run as root, so as root
//! both run as the `postgres` system user (the Debian package's) through `setpriv`. Each test
//! takes a database of its own from [`Postgres::database`].

use crate::{free_port, wait_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when CI demands the PostgreSQL tests to run.
pub fn postgres_required() -> bool {
    crate::process::required("DUSTWATCH_REQUIRE_POSTGRES")
}

/// The directory holding `initdb` and `postgres`: Debian's newest versioned one, else the one
/// `pg_config` names.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    bin.join("initdb").exists().then_some(bin)
}

/// A running PostgreSQL with trust authentication for the `postgres` role on 127.0.0.1.
pub struct Postgres {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    /// Declared last: removed after the server stopped.
    dir: tempfile::TempDir,
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as the `postgres` user when we are root, else as ourselves.
fn command(program: &Path) -> Command {
    if as_root() {
        // setpriv execs the program itself: the child we hold is the server, not a wrapper.
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Start a fresh server. Returns None (skip) when PostgreSQL is not installed; panics when
    /// it is required (`DUSTWATCH_REQUIRE_POSTGRES`) but missing or does not start.
    pub fn start() -> Option<Postgres> {
        if !crate::process::installed_or_skip(
            postgres_bin_dir().is_some(),
            "PostgreSQL",
            "DUSTWATCH_REQUIRE_POSTGRES",
            "PostgreSQL not installed: skipping this test",
        ) {
            return None;
        }
        if !postgres_required() {
            eprintln!("DUSTWATCH_REQUIRE_POSTGRES is not set: skipping this PostgreSQL test");
            return None;
        }
        Postgres::start_installed()
    }

    /// Start a fresh server whenever PostgreSQL is installed, whatever the environment says
    /// (benchmarks); None when it is not.
    pub fn start_installed() -> Option<Postgres> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::tempdir().expect("temp dir for PostgreSQL");
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown of the PostgreSQL directory failed");
        }
        let data = dir.path().join("data");
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            bin,
            dir,
        };
        pg.spawn();
        Some(pg)
    }

    fn spawn(&mut self) {
        // Durability is not under test here: no fsync keeps the shared machine's disk quiet.
        let child = command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        wait_port(self.port);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Create a new empty database and return its URL (`postgresql://postgres@127.0.0.1:P/db`).
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The port answers a moment before the server accepts logins.
            let out = Command::new(self.bin.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg(&name)
                .output()
                .expect("run createdb");
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "createdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Start again on the same port with the same data (after [`Postgres::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stop: SIGINT is PostgreSQL's fast shutdown (clients are disconnected).
    pub fn stop(&mut self) {
        crate::process::stop(self.child.take(), libc::SIGINT);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
