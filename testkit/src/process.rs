//! The external programs tests run as child processes: whether CI demands them, skipping (or
//! failing) when one is missing, and stopping one the way its own shutdown wants.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the environment variable `var` (e.g. `DUSTWATCH_REQUIRE_MOSQUITTO`) demands the
/// program's tests to run: set, and not `0`.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v != "0")
}

/// Whether a test needing `program` can run: true when it is installed; else false (the test
/// skips, saying `skipping`), or a panic when `require_var` demands it.
pub fn installed_or_skip(
    installed: bool,
    program: &str,
    require_var: &str,
    skipping: &str,
) -> bool {
    if installed {
        return true;
    }
    if required(require_var) {
        panic!("{require_var} is set but {program} is not installed");
    }
    eprintln!("{skipping}");
    false
}

/// Send `signal` to the child (its graceful shutdown), wait up to 30 s for it to exit, then kill
/// it. Nothing happens when it already stopped (`None`).
pub fn stop(child: Option<Child>, signal: libc::c_int) {
    let Some(mut c) = child else { return };
    if let Ok(pid) = libc::pid_t::try_from(c.id()) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, signal) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Kill the child at once, as a crash would.
pub fn kill(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `dustwatch serve` (the binary at `dustwatch`) with the config file `config`, on the MQTT
/// broker at `broker_port`, HTTP on `http_port` and its data in `data`; no input and no output
/// but its log on stderr. The caller adds what differs (client id, `RUST_LOG`, where stderr
/// goes), then spawns it.
pub fn serve_command(
    dustwatch: &Path,
    config: &Path,
    broker_port: u16,
    http_port: u16,
    data: &Path,
) -> Command {
    let mut c = Command::new(dustwatch);
    c.arg("--config")
        .arg(config)
        .args([
            "serve",
            "--broker",
            &format!("mqtt://127.0.0.1:{broker_port}"),
            "--http",
            &format!("127.0.0.1:{http_port}"),
            "--data",
        ])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}
