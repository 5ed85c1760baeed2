//! Lockstep in virtual time, for `--speed max`: the fleet (every device and the city's level
//! feed) advances together, one tick at a time. Each participant announces the simulated instant
//! of its next work; it may do that work once every other participant's next work is at that
//! instant or later. So no device runs hours ahead of another, a level change goes out once
//! every device has produced the readings before it, and a run at `--speed max` sends what a
//! paced run sends in the same event-time order, within a tick and a device's in-flight window.
//!
//! The participant with the earliest next work can always go on, so the fleet never stalls on
//! the barrier itself; it waits only on what a paced run waits on too (a connection, acks).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    /// Next work of each participant (ms); `i64::MAX` once it has none left.
    next: Vec<i64>,
    /// How many participants have their next work at each instant (the earliest is the floor).
    counts: BTreeMap<i64, usize>,
}

#[derive(Debug)]
pub(crate) struct Lockstep {
    state: Mutex<State>,
    moved: Notify,
}

impl State {
    /// The earliest next work of everyone but `who`.
    fn floor_without(&self, who: usize) -> i64 {
        let mine = self.next.get(who).copied();
        let mut it = self.counts.iter();
        match it.next() {
            Some((t, n)) if Some(*t) == mine && *n == 1 => it.next().map_or(i64::MAX, |(t, _)| *t),
            Some((t, _)) => *t,
            None => i64::MAX,
        }
    }
}

impl Lockstep {
    /// `n` participants, each with work at `start`.
    pub(crate) fn new(n: usize, start: i64) -> Lockstep {
        Lockstep {
            state: Mutex::new(State {
                next: vec![start; n],
                counts: BTreeMap::from([(start, n)]),
            }),
            moved: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two plain collections updated together; a panic elsewhere cannot leave
        // them half-written, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Participant `who` has done everything before `next` (`i64::MAX`: it is finished).
    pub(crate) fn announce(&self, who: usize, next: i64) {
        let mut s = self.lock();
        let Some(old) = s.next.get(who).copied() else {
            return;
        };
        if old == next {
            return;
        }
        let floor = s.counts.keys().next().copied();
        if let Some(n) = s.counts.get_mut(&old) {
            *n -= 1;
            if *n == 0 {
                s.counts.remove(&old);
            }
        }
        *s.counts.entry(next).or_default() += 1;
        s.next[who] = next;
        let moved = s.counts.keys().next().copied() != floor;
        drop(s);
        if moved {
            self.moved.notify_waiters();
        }
    }

    /// Whether `who` may do its work at `t` now.
    pub(crate) fn may(&self, who: usize, t: i64) -> bool {
        self.lock().floor_without(who) >= t
    }

    /// Wait until `who` may do its work at `t`.
    pub(crate) async fn wait(&self, who: usize, t: i64) {
        loop {
            let notified = self.moved.notified();
            tokio::pin!(notified);
            // Registered before the check, so a move between the check and the wait wakes it.
            notified.as_mut().enable();
            if self.may(who, t) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_earliest_may_always_go_on() {
        let l = Lockstep::new(3, 0);
        l.announce(0, 60);
        assert!(!l.may(0, 60), "others are still at 0");
        assert!(l.may(1, 0));
        l.announce(1, 60);
        l.announce(2, 120);
        assert!(l.may(0, 60) && l.may(1, 60));
        assert!(!l.may(2, 120), "two are still at 60");
        l.announce(0, i64::MAX);
        l.announce(1, i64::MAX);
        assert!(l.may(2, 120));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn participants_stay_within_a_tick() {
        let l = Arc::new(Lockstep::new(4, 0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for who in 0..4 {
            let (l, seen) = (l.clone(), seen.clone());
            tasks.push(tokio::spawn(async move {
                for tick in 0..50i64 {
                    let t = tick * 60;
                    l.wait(who, t).await;
                    seen.lock().unwrap_or_else(|e| e.into_inner()).push(t);
                    // Uneven work: some participants yield more than others.
                    for _ in 0..who * 3 {
                        tokio::task::yield_now().await;
                    }
                    l.announce(who, t + 60);
                }
                l.announce(who, i64::MAX);
            }));
        }
        for t in tasks {
            t.await.expect("participant ran");
        }
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen.len(), 200);
        // Work is done in event-time order across the fleet: never a tick back.
        assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    }
}
