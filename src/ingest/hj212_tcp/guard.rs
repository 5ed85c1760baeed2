//! Who may knock how often: failures of the MN/PW check tracked per MN and per IP address, a
//! growing delay before each refusal and lockouts, connections counted per address, and a rate
//! limit on the dead letters refusals leave. One mutex over small maps; it is taken once per
//! connection and once per frame, never across an await.
//!
//! Unknown MNs are tracked like known ones, so a guess at an MN and a guess at a PW look the same
//! from outside (same reply, same delay). Memory is bounded by `max_tracked`: when full, expired
//! entries go first, then the one with the fewest failures (a flood of one-off guesses cannot
//! push out an MN under attack).

use super::config::Hj212Config;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Mn(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    lockouts: u32,
}

/// The client an address stands for: IPv4 (also when mapped into IPv6) as is, IPv6 by its /64
/// prefix (one host usually holds a whole /64, so per-address limits count the prefix).
pub fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::from(seg)
            }
        },
    }
}

/// Addresses that logged in with an MN kept per MN (its own devices are not held by its lockout).
const TRUSTED_PER_MN: usize = 4;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    trusted: HashMap<String, Vec<IpAddr>>,
    per_addr: HashMap<IpAddr, usize>,
    /// Dead-letter tokens left and when they were last refilled.
    tokens: f64,
    refilled: Option<Instant>,
}

/// What the guard says about a frame's MN/PW check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Check,
    /// The MN or the address is locked out: refuse without checking.
    Locked,
}

/// What a refusal costs the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Wait this long before the reply (and before reading on).
    pub delay: Duration,
    /// This failure started a lockout.
    pub locked: bool,
    /// Keep a dead letter for it (within the rate limit).
    pub dead_letter: bool,
}

pub struct Guard {
    config: Hj212Config,
    inner: Mutex<Inner>,
}

impl Guard {
    pub fn new(config: &Hj212Config) -> Self {
        Guard {
            config: config.clone(),
            inner: Mutex::new(Inner {
                tokens: f64::from(config.auth_dead_letters_per_min),
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters (counters only); keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a connection from `ip`; `false` when it already has `max_connections_per_addr`.
    pub fn open(&self, ip: IpAddr) -> bool {
        let ip = client(ip);
        let mut inner = self.lock();
        let n = inner.per_addr.entry(ip).or_insert(0);
        if *n >= self.config.max_connections_per_addr.max(1) {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection from `ip` closed.
    pub fn close(&self, ip: IpAddr) {
        let ip = client(ip);
        let mut inner = self.lock();
        if let Some(n) = inner.per_addr.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_addr.remove(&ip);
            }
        }
    }

    /// Before checking `mn`'s password for a frame from `ip`.
    pub fn check(&self, mn: &str, ip: IpAddr, now: Instant) -> Verdict {
        let ip = client(ip);
        let mut inner = self.lock();
        let locked = |inner: &mut Inner, key: &Key| {
            inner
                .entries
                .get(key)
                .and_then(|e| e.locked_until)
                .is_some_and(|t| t > now)
        };
        if locked(&mut inner, &Key::Addr(ip)) {
            return Verdict::Locked;
        }
        let trusted = inner.trusted.get(mn).is_some_and(|a| a.contains(&ip));
        if !trusted && locked(&mut inner, &Key::Mn(mn.to_owned())) {
            return Verdict::Locked;
        }
        Verdict::Check
    }

    /// `mn` logged in from `ip`: the address's failures are forgotten and it is trusted for `mn`.
    pub fn success(&self, mn: &str, ip: IpAddr) {
        let ip = client(ip);
        let mut inner = self.lock();
        inner.entries.remove(&Key::Addr(ip));
        if inner.trusted.get(mn).is_some_and(|a| a.contains(&ip)) {
            return;
        }
        // Only registered MNs reach here (a successful check), so this map is bounded by the
        // registry.
        let list = inner.trusted.entry(mn.to_owned()).or_default();
        if list.len() >= TRUSTED_PER_MN {
            list.remove(0);
        }
        list.push(ip);
    }

    /// A frame from `ip` was refused: unknown `mn`, wrong PW, or `locked` (refused without a
    /// check; counts toward nothing, but pays the current delay).
    pub fn refuse(&self, mn: &str, ip: IpAddr, locked: bool, now: Instant) -> Refusal {
        let ip = client(ip);
        let c = &self.config;
        let mut inner = self.lock();
        let dead_letter = take_token(&mut inner, c.auth_dead_letters_per_min, now);
        let mut worst = 0;
        let mut started_lockout = false;
        for key in [Key::Mn(mn.to_owned()), Key::Addr(ip)] {
            if !inner.entries.contains_key(&key) {
                if locked {
                    continue;
                }
                make_room(&mut inner, c, now);
                inner.entries.insert(
                    key.clone(),
                    Entry {
                        failures: 0,
                        last_failure: now,
                        locked_until: None,
                        lockouts: 0,
                    },
                );
            }
            let Some(e) = inner.entries.get_mut(&key) else {
                continue;
            };
            if !locked {
                e.failures = e.failures.saturating_add(1);
                e.last_failure = now;
                if e.failures % c.lockout_after.max(1) == 0 {
                    e.lockouts = e.lockouts.saturating_add(1);
                    let secs = c
                        .lockout_s
                        .max(1)
                        .saturating_mul(1u64 << (e.lockouts - 1).min(20))
                        .min(c.lockout_max_s.max(1));
                    e.locked_until = Some(now + Duration::from_secs(secs));
                    started_lockout = true;
                }
            }
            worst = worst.max(e.failures);
        }
        let delay_ms = if worst == 0 {
            0
        } else {
            c.auth_delay_ms
                .saturating_mul(1u64 << (worst - 1).min(20))
                .min(c.auth_delay_max_ms)
        };
        Refusal {
            delay: Duration::from_millis(delay_ms),
            locked: started_lockout,
            dead_letter,
        }
    }

    /// MNs and addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().entries.len()
    }
}

fn expired(e: &Entry, c: &Hj212Config, now: Instant) -> bool {
    e.locked_until.is_none_or(|t| t <= now)
        && now.saturating_duration_since(e.last_failure) >= Duration::from_secs(c.failure_memory_s)
}

/// Make room for one more entry: drop expired ones, then the weakest.
fn make_room(inner: &mut Inner, c: &Hj212Config, now: Instant) {
    let max = c.max_tracked.max(2);
    if inner.entries.len() < max {
        return;
    }
    inner.entries.retain(|_, e| !expired(e, c, now));
    while inner.entries.len() >= max {
        let weakest = inner
            .entries
            .iter()
            .min_by_key(|(_, e)| {
                (
                    e.locked_until.is_some_and(|t| t > now),
                    e.failures,
                    e.last_failure,
                )
            })
            .map(|(k, _)| k.clone());
        match weakest {
            Some(k) => inner.entries.remove(&k),
            None => break,
        };
    }
}

/// Token bucket of `per_min` tokens a minute; `true` when one was taken.
fn take_token(inner: &mut Inner, per_min: u32, now: Instant) -> bool {
    let cap = f64::from(per_min);
    if let Some(last) = inner.refilled {
        let mins = now.saturating_duration_since(last).as_secs_f64() / 60.0;
        inner.tokens = (inner.tokens + mins * cap).min(cap);
    }
    inner.refilled = Some(now);
    if inner.tokens >= 1.0 {
        inner.tokens -= 1.0;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Hj212Config {
        Hj212Config {
            auth_delay_ms: 100,
            auth_delay_max_ms: 1_000,
            lockout_after: 3,
            lockout_s: 10,
            lockout_max_s: 25,
            max_tracked: 4,
            auth_dead_letters_per_min: 2,
            max_connections_per_addr: 2,
            ..Hj212Config::default()
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn ipv6_clients_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("literal");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("literal");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("literal");
        assert_eq!(client(a), client(b));
        assert_ne!(client(a), client(other));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("literal");
        assert_eq!(client(mapped), IpAddr::from([10, 0, 0, 7]));
        let g = Guard::new(&config());
        assert!(g.open(a) && g.open(b));
        assert!(!g.open(a), "two from the same /64 already");
        assert!(g.open(other));
    }

    #[test]
    fn delays_grow_and_lockouts_follow_and_end() {
        let g = Guard::new(&config());
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..3)
            .map(|_| g.refuse("M", ip(9), false, t0).delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400]);
        assert_eq!(g.check("M", ip(1), t0), Verdict::Locked, "the MN is locked");
        assert_eq!(
            g.check("X", ip(9), t0),
            Verdict::Locked,
            "so is the address"
        );
        assert_eq!(g.check("X", ip(1), t0), Verdict::Check);
        // Refusals while locked pay the delay but do not extend the lockout.
        assert_eq!(g.refuse("M", ip(9), true, t0).delay.as_millis(), 400);
        let later = t0 + Duration::from_secs(11);
        assert_eq!(g.check("M", ip(1), later), Verdict::Check);
        // The next lockout is twice as long (capped at 25 s).
        for _ in 0..3 {
            g.refuse("M", ip(9), false, later);
        }
        assert_eq!(
            g.check("M", ip(1), later + Duration::from_secs(19)),
            Verdict::Locked
        );
        assert_eq!(
            g.check("M", ip(1), later + Duration::from_secs(21)),
            Verdict::Check
        );
    }

    #[test]
    fn an_address_that_logged_in_is_not_held_by_its_mns_lockout() {
        let g = Guard::new(&config());
        let t0 = Instant::now();
        g.success("M", ip(1));
        for _ in 0..3 {
            g.refuse("M", ip(9), false, t0);
        }
        assert_eq!(g.check("M", ip(2), t0), Verdict::Locked);
        assert_eq!(g.check("M", ip(1), t0), Verdict::Check);
    }

    #[test]
    fn tracking_is_bounded_and_keeps_the_mn_under_attack() {
        let g = Guard::new(&config());
        let t0 = Instant::now();
        g.refuse("target", ip(9), false, t0);
        g.refuse("target", ip(9), false, t0);
        for i in 0..100u8 {
            g.refuse(&format!("junk{i}"), ip(100), false, t0);
            assert!(g.tracked() <= 4);
        }
        let r = g.refuse("target", ip(50), false, t0);
        assert!(r.locked, "the third failure of `target` still locks it");
    }

    #[test]
    fn dead_letters_are_rate_limited_and_connections_counted_per_address() {
        let g = Guard::new(&config());
        let t0 = Instant::now();
        let kept: Vec<bool> = (0..4)
            .map(|i| g.refuse(&format!("m{i}"), ip(3), false, t0).dead_letter)
            .collect();
        assert_eq!(kept, [true, true, false, false]);
        assert!(
            g.refuse("m", ip(3), false, t0 + Duration::from_secs(30))
                .dead_letter
        );
        assert!(g.open(ip(1)) && g.open(ip(1)));
        assert!(!g.open(ip(1)));
        assert!(g.open(ip(2)));
        g.close(ip(1));
        assert!(g.open(ip(1)));
    }
}
