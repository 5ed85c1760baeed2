//! What an operator meets: log lines fit for a journal or a log shipper, and the series a
//! Prometheus setup expects. The real `dustwatch` binary.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::*;

/// Start `dustwatch serve` against a broker port nobody listens on (so it logs a warning at
/// once), read stderr up to that warning, then stop it.
fn first_warning(log_format: Option<&str>) -> String {
    let data = tempfile::tempdir().expect("temp dir");
    let http = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dustwatch"));
    cmd.args(["serve", "--broker"])
        .arg(format!("mqtt://127.0.0.1:{}", free_port()))
        .args(["--http", &format!("127.0.0.1:{http}"), "--data"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = log_format {
        cmd.args(["--log-format", f]);
    }
    let mut child = cmd.spawn().expect("spawn dustwatch serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("MQTT connection failed"));
    let _ = child.kill();
    let _ = child.wait();
    line.expect("a warning about the broker")
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let line = first_warning(None);
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let line = first_warning(Some("json"));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(v["level"], "WARN", "{v}");
    assert_eq!(v["fields"]["message"], "MQTT connection failed", "{v}");
    assert!(v["timestamp"].is_string(), "{v}");
}

#[test]
fn metrics_carry_process_and_build_series() {
    let broker = embedded_broker();
    let data = tempfile::tempdir().expect("temp dir");
    let agg = AggregatorProcess::serve(broker.addr().port(), data.path());
    let body = agg.metrics();
    assert_eq!(
        metric(
            &body,
            &format!(
                "dustwatch_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    // A process this young may not have used a full clock tick of CPU yet.
    assert!(metric(&body, "process_cpu_seconds_total").is_some_and(|v| v >= 0.0));
    for name in [
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    ] {
        let v = metric(&body, name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(v > 0.0, "{name} = {v}");
    }
}

/// `dustwatch <command> --help` text.
fn help(command: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dustwatch"))
        .args(command)
        .arg("--help")
        .output()
        .expect("run dustwatch --help");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn each_command_lists_only_the_flags_it_uses() {
    let score = help(&["score"]);
    for absent in ["--http", "--mqtt-listen", "--hj212-listen", "--registry"] {
        assert!(
            !score.contains(absent),
            "score --help lists {absent}:\n{score}"
        );
    }
    assert!(score.contains("--data") && score.contains("--config"));
    assert!(score.contains("[possible values: table, json]"), "{score}");
    let serve = help(&["serve"]);
    for present in [
        "--http",
        "--hj212-listen",
        "--registry",
        "--data",
        "--broker",
    ] {
        assert!(serve.contains(present), "serve --help lacks {present}");
    }
    assert!(!serve.contains("--mqtt-listen"));
    let report = help(&["report"]);
    assert!(
        report.contains("[possible values: html, csv, json]"),
        "{report}"
    );
    // A value outside the enum is refused by the parser, with the choices.
    let out = Command::new(env!("CARGO_BIN_EXE_dustwatch"))
        .args(["report", "--date", "2017-01-02", "--format", "pdf"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}
