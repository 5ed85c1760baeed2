//! The `process_*` series every Prometheus client exposes, read from Linux's `/proc`, and the
//! build's identity. Elsewhere the process series are simply absent.

use std::fmt::Write;

/// Clock ticks per second of the times in `/proc/self/stat`: USER_HZ, which Linux fixes at 100
/// for everything it reports to user space.
const USER_HZ: f64 = 100.0;

/// Append `dustwatch_build_info` and the `process_*` series to `out`.
pub fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP dustwatch_build_info The running build: its version.\n\
         # TYPE dustwatch_build_info gauge\n\
         dustwatch_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let Some(p) = read() else {
        return;
    };
    let mut series = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    series(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    );
    series(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes,
    );
    series(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        p.virtual_bytes,
    );
    if let Some(start) = p.start_time_seconds {
        series(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            start,
        );
    }
    if let Some(n) = p.open_fds {
        series(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            n,
        );
    }
    if let Some(n) = p.max_fds {
        series(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            n,
        );
    }
    series(
        "process_threads",
        "gauge",
        "Number of OS threads in the process.",
        p.threads,
    );
}

#[derive(Debug, PartialEq)]
struct Process {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    threads: f64,
}

fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mut p = parse_stat(&stat)?;
    p.resident_bytes = status_kib(&status, "VmRSS:")? * 1024.0;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| btime(&s));
    p.start_time_seconds = p
        .start_time_seconds
        .zip(boot)
        .map(|(since_boot, boot)| boot + since_boot);
    p.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    p.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| max_open_files(&s));
    Some(p)
}

/// Fields of `/proc/self/stat` after the command name (which may hold spaces and parentheses);
/// `start_time_seconds` is left as seconds since boot.
fn parse_stat(stat: &str) -> Option<Process> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    Some(Process {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        resident_bytes: 0.0,
        virtual_bytes: field(23)?,
        start_time_seconds: field(22).map(|t| t / USER_HZ),
        open_fds: None,
        max_fds: None,
        threads: field(20)?,
    })
}

fn status_kib(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn btime(proc_stat: &str) -> Option<f64> {
    let line = proc_stat.lines().find(|l| l.starts_with("btime "))?;
    line["btime ".len()..].trim().parse().ok()
}

fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files  <soft>  <hard>  files": the soft limit applies.
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_command_name_holding_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 104857600 2560 18446744073709551615 0 0 0 0 0 0 0 4096 0 0 0 17 1 0 0";
        let p = parse_stat(stat).expect("parses");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.threads, 7.0);
        assert_eq!(p.virtual_bytes, 104_857_600.0);
        assert_eq!(p.start_time_seconds, Some(123.45));
    }

    #[test]
    fn parses_limits_status_and_btime() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2048.0)
        );
        assert_eq!(
            btime("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn this_process_reports_itself() {
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("dustwatch_build_info{version=\""));
        if cfg!(target_os = "linux") {
            let rss = out
                .lines()
                .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                .and_then(|v| v.parse::<f64>().ok())
                .expect("RSS reported on Linux");
            assert!(rss > 0.0);
            assert!(out.contains("process_open_fds "));
        }
    }
}
