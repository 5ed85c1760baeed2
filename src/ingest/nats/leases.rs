//! Partition ownership without I/O: given what the key-value bucket holds (the live instances
//! and each partition's lease), decide which leases this instance renews, takes, gives back or
//! has lost. The bucket's compare-and-set decides every race; this only picks what to try. The
//! async driver (`driver.rs`) reads the bucket, applies the plan and reports back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The holder of one partition's lease as the bucket shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub revision: u64,
}

/// One reading of the bucket.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Instances announced and not expired (this one included once it announced itself).
    pub live: BTreeSet<String>,
    /// Current lease per partition; absent = free (never taken, given back, or expired).
    pub holders: BTreeMap<u32, Holder>,
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Update the lease at the revision we hold (compare-and-set).
    Renew { partition: u32, revision: u64 },
    /// Create the lease (succeeds only while nobody holds it).
    Take { partition: u32 },
    /// Stop consuming, then delete the lease at our revision: another instance should have it.
    GiveBack { partition: u32, revision: u64 },
    /// The lease moved on or lapsed: stop consuming now (writes would be fenced anyway).
    Lost { partition: u32 },
}

/// A lease this instance holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub revision: u64,
    /// When the bucket last confirmed it (local clock).
    pub confirmed: Instant,
}

/// This instance's leases and the rules for spreading partitions.
#[derive(Debug)]
pub struct Leases {
    me: String,
    partitions: u32,
    ttl: Duration,
    held: BTreeMap<u32, Held>,
}

impl Leases {
    pub fn new(me: impl Into<String>, partitions: u32, ttl: Duration) -> Leases {
        Leases {
            me: me.into(),
            partitions: partitions.max(1),
            ttl,
            held: BTreeMap::new(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// The leases held now, by partition.
    pub fn held(&self) -> &BTreeMap<u32, Held> {
        &self.held
    }

    /// The most partitions one instance should hold with `live` instances up: ceil(P / live).
    pub fn fair_share(&self, live: usize) -> usize {
        let live = live.max(1) as u32;
        self.partitions.div_ceil(live) as usize
    }

    /// Decide what to do after reading `view` at `now`. Leases are renewed on every plan, so the
    /// driver plans well within the TTL (a third of it).
    pub fn plan(&self, view: &View, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut keep: Vec<(u32, u64)> = Vec::new();
        for (&partition, held) in &self.held {
            let lapsed = now.saturating_duration_since(held.confirmed) >= self.ttl;
            let current = match view.holders.get(&partition) {
                // A newer revision of our own: a renewal whose answer was lost did go through.
                Some(h) if h.owner == self.me && h.revision >= held.revision => Some(h.revision),
                // Someone else's now, or gone (expired because we were too slow, or deleted).
                _ => None,
            };
            match current {
                Some(revision) if !lapsed => keep.push((partition, revision)),
                _ => actions.push(Action::Lost { partition }),
            }
        }
        // Count ourselves live even before our announcement is visible.
        let live = view.live.len() + usize::from(!view.live.contains(&self.me));
        let share = self.fair_share(live);
        // Over the share (an instance joined): give back the highest partitions.
        while keep.len() > share {
            let (partition, revision) = keep.pop().expect("len > share >= 1");
            actions.push(Action::GiveBack {
                partition,
                revision,
            });
        }
        for &(partition, revision) in &keep {
            actions.push(Action::Renew {
                partition,
                revision,
            });
        }
        // Under the share: try free partitions, starting at a point of our own so instances
        // starting together do not all race for the same ones.
        let want = share - keep.len();
        let start = self.start_point();
        let free = (0..self.partitions)
            .map(|i| (start + i) % self.partitions)
            .filter(|p| !view.holders.contains_key(p) && !keep.iter().any(|(k, _)| k == p));
        actions.extend(free.take(want).map(|partition| Action::Take { partition }));
        actions
    }

    fn start_point(&self) -> u32 {
        // FNV-1a of the instance name: stable across restarts, spread across names.
        let mut h: u32 = 0x811c_9dc5;
        for b in self.me.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h % self.partitions
    }

    /// The bucket took our create or update: we hold `partition` at `revision` from `at` on.
    pub fn confirmed(&mut self, partition: u32, revision: u64, at: Instant) {
        self.held.insert(
            partition,
            Held {
                revision,
                confirmed: at,
            },
        );
    }

    /// We no longer hold `partition` (lost, given back, or a renewal refused).
    pub fn released(&mut self, partition: u32) {
        self.held.remove(&partition);
    }

    /// The fencing revision of a held partition.
    pub fn revision(&self, partition: u32) -> Option<u64> {
        self.held.get(&partition).map(|h| h.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(9);

    fn view(live: &[&str], holders: &[(u32, &str, u64)]) -> View {
        View {
            live: live.iter().map(|s| s.to_string()).collect(),
            holders: holders
                .iter()
                .map(|(p, o, r)| {
                    (
                        *p,
                        Holder {
                            owner: o.to_string(),
                            revision: *r,
                        },
                    )
                })
                .collect(),
        }
    }

    fn takes(actions: &[Action]) -> Vec<u32> {
        let mut t: Vec<u32> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Take { partition } => Some(*partition),
                _ => None,
            })
            .collect();
        t.sort();
        t
    }

    #[test]
    fn alone_it_takes_every_free_partition() {
        let l = Leases::new("a", 4, TTL);
        let plan = l.plan(&view(&[], &[]), Instant::now());
        assert_eq!(takes(&plan), vec![0, 1, 2, 3]);
    }

    #[test]
    fn two_instances_take_half_each_and_never_a_held_one() {
        let now = Instant::now();
        let a = Leases::new("a", 4, TTL);
        let plan = a.plan(&view(&["a", "b"], &[(0, "b", 5), (1, "b", 6)]), now);
        assert_eq!(takes(&plan), vec![2, 3]);
        // Five partitions over two: at most three each.
        let a = Leases::new("a", 5, TTL);
        assert_eq!(a.plan(&view(&["a", "b"], &[]), now).len(), 3);
    }

    #[test]
    fn held_leases_are_renewed_at_their_revision() {
        let now = Instant::now();
        let mut a = Leases::new("a", 2, TTL);
        a.confirmed(0, 10, now);
        a.confirmed(1, 11, now);
        let plan = a.plan(&view(&["a"], &[(0, "a", 10), (1, "a", 11)]), now);
        assert_eq!(
            plan,
            vec![
                Action::Renew {
                    partition: 0,
                    revision: 10
                },
                Action::Renew {
                    partition: 1,
                    revision: 11
                }
            ]
        );
    }

    #[test]
    fn a_lease_that_moved_on_or_lapsed_is_lost() {
        let t0 = Instant::now();
        let mut a = Leases::new("a", 3, TTL);
        a.confirmed(0, 10, t0);
        a.confirmed(1, 11, t0);
        a.confirmed(2, 12, t0);
        // 0: someone else holds it now; 1: gone from the bucket; 2: ours but we were paused
        // past the TTL.
        let plan = a.plan(&view(&["a", "b"], &[(0, "b", 20), (2, "a", 12)]), t0 + TTL);
        for p in 0..3 {
            assert!(
                plan.contains(&Action::Lost { partition: p }),
                "{p}: {plan:?}"
            );
        }
        // Partition 1 is free again: it may be taken afresh (with a new revision).
        assert_eq!(takes(&plan), vec![1]);
    }

    #[test]
    fn a_renewal_whose_answer_was_lost_is_picked_up_from_the_bucket() {
        let now = Instant::now();
        let mut a = Leases::new("a", 1, TTL);
        a.confirmed(0, 10, now);
        let plan = a.plan(&view(&["a"], &[(0, "a", 14)]), now);
        assert_eq!(
            plan,
            vec![Action::Renew {
                partition: 0,
                revision: 14
            }]
        );
    }

    #[test]
    fn when_an_instance_joins_the_extra_partitions_are_given_back() {
        let now = Instant::now();
        let mut a = Leases::new("a", 4, TTL);
        let holders: Vec<(u32, &str, u64)> = (0..4).map(|p| (p, "a", u64::from(p) + 1)).collect();
        for (p, _, r) in &holders {
            a.confirmed(*p, *r, now);
        }
        let plan = a.plan(&view(&["a", "b"], &holders), now);
        let given: Vec<u32> = plan
            .iter()
            .filter_map(|x| match x {
                Action::GiveBack { partition, .. } => Some(*partition),
                _ => None,
            })
            .collect();
        assert_eq!(given, vec![3, 2]);
        assert_eq!(
            plan.iter()
                .filter(|x| matches!(x, Action::Renew { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn when_an_instance_dies_its_partitions_are_taken_after_expiry() {
        let now = Instant::now();
        let mut a = Leases::new("a", 4, TTL);
        a.confirmed(0, 1, now);
        a.confirmed(1, 2, now);
        // b is gone: its announcement and leases expired from the bucket.
        let plan = a.plan(&view(&["a"], &[(0, "a", 1), (1, "a", 2)]), now);
        assert_eq!(takes(&plan), vec![2, 3]);
        // While b's leases still stand, a renews its own and takes nothing.
        let plan = a.plan(
            &view(
                &["a"],
                &[(0, "a", 1), (1, "a", 2), (2, "b", 3), (3, "b", 4)],
            ),
            now,
        );
        assert!(takes(&plan).is_empty(), "{plan:?}");
    }

    #[test]
    fn instances_start_their_search_at_different_partitions() {
        let points: BTreeSet<u32> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|n| Leases::new(*n, 64, TTL).start_point())
            .collect();
        assert!(points.len() > 1);
    }
}
