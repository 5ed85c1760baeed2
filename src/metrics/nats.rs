//! NATS ingest counters: partitions owned, leases taken and lost, batches the store fenced.

use std::sync::atomic::{AtomicI64, AtomicU64};

/// NATS JetStream ingest (`[ingest] source = "nats"`); all zero otherwise.
#[derive(Debug, Default)]
pub struct NatsMetrics {
    /// 1 while connected to the NATS cluster.
    pub connected: AtomicI64,
    /// Partitions this instance holds a lease on now.
    pub partitions_owned: AtomicI64,
    /// Leases taken (a free partition, or one whose owner's lease expired).
    pub leases_taken: AtomicU64,
    /// Leases lost (moved on to another instance, or expired before renewal).
    pub leases_lost: AtomicU64,
    /// Leases given back so a newly live instance gets its share.
    pub leases_given_back: AtomicU64,
    /// Batches the store refused because a newer lease holder had written the partition.
    pub fenced: AtomicU64,
    /// Messages acknowledged to JetStream after their commit.
    pub acked: AtomicU64,
    /// Lease rounds run (one every third of the lease TTL): a failover is counted in these.
    pub lease_rounds: AtomicU64,
    /// Sites the rules rebuilt from the store on taking their partitions over.
    pub sites_adopted: AtomicU64,
}

impl NatsMetrics {
    pub(super) fn render(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 7] = [
            (
                "dustwatch_nats_lease_rounds_total",
                "Lease rounds run (one every third of the lease TTL).",
                &self.lease_rounds,
            ),
            (
                "dustwatch_nats_sites_adopted_total",
                "Sites the rules rebuilt from the store on taking their partition over.",
                &self.sites_adopted,
            ),
            (
                "dustwatch_nats_leases_taken_total",
                "Partition leases taken.",
                &self.leases_taken,
            ),
            (
                "dustwatch_nats_leases_lost_total",
                "Partition leases lost (taken over or expired before renewal).",
                &self.leases_lost,
            ),
            (
                "dustwatch_nats_leases_given_back_total",
                "Partition leases given back to spread partitions over live instances.",
                &self.leases_given_back,
            ),
            (
                "dustwatch_nats_fenced_batches_total",
                "Batches the store refused: a newer lease holder had written the partition.",
                &self.fenced,
            ),
            (
                "dustwatch_nats_acked_total",
                "Messages acknowledged to JetStream after their commit.",
                &self.acked,
            ),
        ];
        super::write_counters(out, &counters);
        let gauges: [(&str, &str, &AtomicI64); 2] = [
            (
                "dustwatch_nats_connected",
                "1 while connected to the NATS cluster.",
                &self.connected,
            ),
            (
                "dustwatch_nats_partitions_owned",
                "Partitions this instance holds a lease on.",
                &self.partitions_owned,
            ),
        ];
        super::write_gauges(out, &gauges);
    }
}
