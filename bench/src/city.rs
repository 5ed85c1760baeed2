//! `dustwatch-bench city`: the simulator at city scale — every device with its own MQTT
//! connection, one reading a minute — and what each device costs the simulator.
//!
//! One process holds at most as many sockets as its open-file limit allows (20,000 hard on the
//! machines this was written on; root cannot raise it there), so the fleet is split over several
//! `sensors-sim` processes, each with its own broker address: a broker process has the same
//! limit, and distinct destinations keep each (source, destination) pair within the ephemeral
//! port range. The brokers are given (`--broker`, repeatable: the MQTT listeners of NATS nodes,
//! say) or started here as Mosquitto children. Each simulator reports its counters once a second
//! (`--progress json`); CPU and memory are read from /proc per child, so the brokers' cost is
//! not counted.

use crate::probe::ProcessProbe;
use anyhow::{bail, Context};
use sensors_sim::Progress;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CityOptions {
    pub devices: u32,
    /// Devices per simulator process (and per broker started here).
    pub per_process: u32,
    /// Broker URLs; empty: start one Mosquitto per simulator process.
    pub brokers: Vec<String>,
    /// Seconds between a device's readings.
    pub interval_s: u32,
    /// The fleet powers on over this much time.
    pub power_on: Duration,
    /// Measured window, after every device connected.
    pub measure: Duration,
    /// The `sensors-sim` executable.
    pub sim_exe: PathBuf,
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CityReport {
    pub devices: u32,
    pub interval_s: u32,
    pub processes: usize,
    pub brokers: Vec<String>,
    pub connected: u64,
    pub connect_failures: u64,
    pub settled_s: f64,
    pub window_s: f64,
    /// Readings the fleet should produce in the window (devices × window / interval).
    pub expected: f64,
    pub generated: u64,
    pub acked: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub cpu_cores: f64,
    pub rss_mib: f64,
}

impl CityReport {
    pub fn print(&self) {
        println!(
            "dustwatch-bench city: {} devices, one MQTT connection each, 1 reading per {} s, over {} simulator processes",
            self.devices, self.interval_s, self.processes
        );
        println!("brokers  {}", self.brokers.join(", "));
        println!(
            "connect  {} of {} connected ({:.3}), {} connect failures, all in after {:.0} s",
            self.connected,
            self.devices,
            self.connected as f64 / f64::from(self.devices.max(1)),
            self.connect_failures,
            self.settled_s
        );
        println!(
            "window   {:.0} s: readings expected {:.0}, generated {}, acknowledged {} (acked/expected {:.3}); buffered at end {}, dropped {}",
            self.window_s,
            self.expected,
            self.generated,
            self.acked,
            self.acked as f64 / self.expected.max(1.0),
            self.buffered,
            self.dropped
        );
        let per_k = 1000.0 / f64::from(self.devices.max(1));
        println!(
            "cost     CPU {:.3} cores in all, {:.4} cores per 1,000 devices; RSS {:.0} MiB in all, {:.1} KiB per device",
            self.cpu_cores,
            self.cpu_cores * per_k,
            self.rss_mib,
            self.rss_mib * 1024.0 / f64::from(self.devices.max(1))
        );
    }
}

/// One simulator process and the newest counters it printed.
struct Simulator {
    child: Child,
    probe: ProcessProbe,
    latest: Arc<Mutex<Progress>>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    fn start(o: &CityOptions, index: usize, devices: u32, broker: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(&o.sim_exe)
            .args(["--scenario", "steady", "--speed", "1", "--progress", "json"])
            .args(["--devices", &devices.to_string()])
            .args([
                "--rate",
                &format!("{}", 1.0 / f64::from(o.interval_s.max(1))),
            ])
            .args(["--power-on", &format!("{}s", o.power_on.as_secs().max(1))])
            .args(["--broker", broker])
            // Distinct client ids per process: the same broker may serve two of them.
            .args(["--client-prefix", &format!("city{index}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", o.sim_exe.display()))?;
        let probe = ProcessProbe::new(child.id());
        let latest = Arc::new(Mutex::new(Progress::default()));
        let stdout = child.stdout.take().context("simulator stdout")?;
        let sink = latest.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(p) = serde_json::from_str::<Progress>(&line) {
                    if let Ok(mut l) = sink.lock() {
                        *l = p;
                    }
                }
            }
        });
        Ok(Simulator {
            child,
            probe,
            latest,
        })
    }

    fn progress(&self) -> Progress {
        self.latest.lock().map(|p| *p).unwrap_or_default()
    }
}

fn total(sims: &[Simulator]) -> Progress {
    sims.iter()
        .map(Simulator::progress)
        .fold(Progress::default(), |a, p| Progress {
            connected: a.connected + p.connected,
            connect_failures: a.connect_failures + p.connect_failures,
            generated: a.generated + p.generated,
            published: a.published + p.published,
            acked: a.acked + p.acked,
            buffered: a.buffered + p.buffered,
            dropped: a.dropped + p.dropped,
        })
}

pub async fn run(o: &CityOptions) -> anyhow::Result<CityReport> {
    if o.per_process == 0 || o.devices == 0 {
        bail!("--devices and --per-process must be above 0");
    }
    let processes = o.devices.div_ceil(o.per_process) as usize;
    // Brokers started here live until the report is made.
    let mut started = Vec::new();
    let brokers: Vec<String> = if o.brokers.is_empty() {
        for _ in 0..processes {
            let m = dustwatch_testkit::Mosquitto::start()
                .context("mosquitto is not installed: pass --broker URLs")?;
            started.push(m);
        }
        started
            .iter()
            .map(|m| format!("mqtt://127.0.0.1:{}", m.port()))
            .collect()
    } else {
        o.brokers.clone()
    };
    let mut sims = Vec::new();
    let mut left = o.devices;
    for i in 0..processes {
        let n = left.min(o.per_process);
        left -= n;
        sims.push(Simulator::start(o, i, n, &brokers[i % brokers.len()])?);
    }
    // The window starts once the fleet is in (or after the power-on plus two minutes, with
    // whatever connected), and after one reading interval more, so that it measures the steady
    // state rather than the first connections.
    let begin = Instant::now();
    let give_up = o.power_on + Duration::from_secs(120);
    while begin.elapsed() < give_up && total(&sims).connected < u64::from(o.devices) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(u64::from(o.interval_s))).await;
    let settled_s = begin.elapsed().as_secs_f64();
    let cpu0: f64 = sims.iter().map(|s| s.probe.cpu_secs()).sum();
    let p0 = total(&sims);
    let t0 = Instant::now();
    tokio::time::sleep(o.measure).await;
    let window_s = t0.elapsed().as_secs_f64();
    let cpu = sims.iter().map(|s| s.probe.cpu_secs()).sum::<f64>() - cpu0;
    let rss_mib = sims.iter().map(|s| s.probe.rss_mib()).sum();
    let p1 = total(&sims);
    drop(sims);
    drop(started);
    Ok(CityReport {
        devices: o.devices,
        interval_s: o.interval_s,
        processes,
        brokers,
        connected: p1.connected,
        connect_failures: p1.connect_failures,
        settled_s,
        window_s,
        expected: f64::from(o.devices) * window_s / f64::from(o.interval_s.max(1)),
        generated: p1.generated - p0.generated,
        acked: p1.acked - p0.acked,
        buffered: p1.buffered,
        dropped: p1.dropped,
        cpu_cores: cpu / window_s,
        rss_mib,
    })
}
