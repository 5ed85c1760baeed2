//! The simulator benchmark's figures, printed as a table with each target's ratio, and as JSON.

use serde::Serialize;

/// One throughput round.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub plain_msgs_per_s: f64,
    pub sim_msgs_per_s: f64,
    /// This process's CPU per message (µs), plain loop and simulator.
    pub plain_cpu_us_per_msg: f64,
    pub sim_cpu_us_per_msg: f64,
}

/// The figures, printed as a table and as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub broker: String,
    pub steady_devices: u32,
    pub steady_connected: u64,
    pub steady_connect_failures: u64,
    pub steady_target_per_s: f64,
    pub steady_acked_per_s: f64,
    /// Readings produced per second in the window (the devices' own pace).
    pub steady_generated_per_s: f64,
    /// Seconds from the start until the window began (warm-up, all connected, backlog sent).
    pub steady_settled_s: f64,
    pub steady_buffered: u64,
    pub steady_dropped: u64,
    pub steady_cpu_cores: f64,
    pub steady_rss_mb: f64,
    pub steady_peak_rss_mb: f64,
    pub connections: u32,
    pub inflight: u16,
    pub payload_bytes: usize,
    pub rounds: Vec<Round>,
    pub plain_msgs_per_s: f64,
    pub sim_max_msgs_per_s: f64,
    pub ratio: f64,
}

impl BenchReport {
    pub fn print(&self) {
        let yes = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "dustwatch-bench sim: broker {} (child process; figures are this process only)",
            self.broker
        );
        println!(
            "steady   {} devices x 1 reading/s: connected {}, connect failures {}, window from {:.0} s",
            self.steady_devices,
            self.steady_connected,
            self.steady_connect_failures,
            self.steady_settled_s
        );
        println!(
            "         generated {:.0}/s, acked {:.0}/s of {:.0}/s (ratio {:.3}), buffered at end {}, dropped {}",
            self.steady_generated_per_s,
            self.steady_acked_per_s,
            self.steady_target_per_s,
            self.steady_acked_per_s / self.steady_target_per_s.max(1.0),
            self.steady_buffered,
            self.steady_dropped
        );
        println!(
            "         CPU {:.2} cores (budget 1.00, ratio {:.2}: {})",
            self.steady_cpu_cores,
            self.steady_cpu_cores / 1.0,
            yes(self.steady_cpu_cores < 1.0)
        );
        println!(
            "         RSS {:.0} MB, peak {:.0} MB (budget 300, ratio {:.2}: {})",
            self.steady_rss_mb,
            self.steady_peak_rss_mb,
            self.steady_peak_rss_mb / 300.0,
            yes(self.steady_peak_rss_mb < 300.0)
        );
        println!(
            "max      {} connections, QoS 1, in flight {}, payload {} bytes:",
            self.connections, self.inflight, self.payload_bytes
        );
        for (i, r) in self.rounds.iter().enumerate() {
            println!(
                "         round {}: plain rumqttc loop {:.0} msg/s ({:.1} µs CPU/msg), sim --speed max {:.0} msg/s ({:.1} µs CPU/msg), ratio {:.2}",
                i + 1,
                r.plain_msgs_per_s,
                r.plain_cpu_us_per_msg,
                r.sim_msgs_per_s,
                r.sim_cpu_us_per_msg,
                r.sim_msgs_per_s / r.plain_msgs_per_s.max(1e-9)
            );
        }
        println!(
            "         all rounds: plain {:.0} msg/s, sim {:.0} msg/s, ratio {:.2} (goal >= 0.90: {})",
            self.plain_msgs_per_s,
            self.sim_max_msgs_per_s,
            self.ratio,
            yes(self.ratio >= 0.9)
        );
    }
}
