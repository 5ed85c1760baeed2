//! What a process uses: resident memory, heap in use (glibc), CPU time; read from Linux.

/// A field of /proc/<pid>/status in kB, as MiB.
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time (user + system) from /proc/<pid>/stat, seconds (USER_HZ = 100).
fn stat_cpu_secs(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the command name: field 3 is index 0; utime is field 14, stime 15.
            let u: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((u + st) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Resident set size of this process, MiB (VmRSS).
pub fn rss_mib() -> f64 {
    status_mib("self", "VmRSS:")
}

/// Peak resident set size of this process so far, MiB (VmHWM).
pub fn peak_rss_mib() -> f64 {
    status_mib("self", "VmHWM:")
}

/// CPU time of this process (user + system), seconds.
pub fn cpu_secs() -> f64 {
    stat_cpu_secs("self")
}

/// Heap bytes in use (allocated and not freed), MiB, as glibc counts them. Unlike RSS it does not
/// include memory the allocator keeps after it was freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_in_use_mib() -> f64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics; it takes no arguments and returns
    // a plain struct by value.
    let info = unsafe { libc::mallinfo2() };
    // Small blocks in use (uordblks) plus blocks served by mmap (hblkhd).
    (info.uordblks + info.hblkhd) as f64 / (1024.0 * 1024.0)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_in_use_mib() -> f64 {
    f64::NAN
}

/// Another process (a child the benchmark started), read the same way.
#[derive(Debug, Clone)]
pub struct ProcessProbe {
    pid: String,
}

impl ProcessProbe {
    pub fn new(pid: u32) -> ProcessProbe {
        ProcessProbe {
            pid: pid.to_string(),
        }
    }

    pub fn cpu_secs(&self) -> f64 {
        stat_cpu_secs(&self.pid)
    }

    pub fn rss_mib(&self) -> f64 {
        status_mib(&self.pid, "VmRSS:")
    }
}
