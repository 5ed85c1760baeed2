//! What a store writer remembers between batches (sites, devices, each site's newest reading,
//! dead-letter counts) and what it decides from that alone, with no database in reach: whether
//! a record's site and device may be stored, which dead letter makes room, a device's state
//! after a status, the fleet clock. Both backends load it, follow its decisions with their own
//! SQL (`known.rs` for SQLite, `postgres/known.rs`) and reset it when a transaction rolls back.

use super::config::StoreConfig;
use super::hot::{fleet_median, Hot};
use super::Latest;
use dustwatch_protocol::{RejectReason, Status, StatusState};
use std::collections::HashMap;

/// What the writer remembers between batches so it does not ask the database on every reading.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) strict: bool,
    pub(crate) limits: Limits,
    /// site id -> registered
    pub(crate) sites: HashMap<String, bool>,
    unregistered: usize,
    pub(crate) dead: DeadCounts,
    /// site -> device -> state; nested so a lookup borrows the record's strings.
    devices: HashMap<String, HashMap<String, DeviceState>>,
    pub(crate) latest: HashMap<String, Latest>,
}

/// Caps on what messages may create.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) unregistered_sites: usize,
    pub(crate) devices_per_site: usize,
    pub(crate) dead_letters: Caps,
}

impl Limits {
    pub(crate) fn of(config: &StoreConfig) -> Limits {
        Limits {
            unregistered_sites: config.max_unregistered_sites as usize,
            devices_per_site: config.max_devices_per_site.max(1) as usize,
            dead_letters: Caps {
                total: config.max_dead_letters,
                per_source: config.max_dead_letters_per_source,
            },
        }
    }
}

/// Caps on the dead-letter table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) total: u64,
    pub(crate) per_source: u64,
}

/// A device as the store last heard of it (its newest status).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct DeviceState {
    pub(crate) state: Option<String>,
    pub(crate) fw: Option<String>,
    pub(crate) boot: Option<u32>,
    pub(crate) interval_s: Option<u32>,
}

/// What the writer must do for a record's site and device. The registry has already counted
/// what it creates; the backend inserts the rows (a failed transaction resets the registry).
#[derive(Debug, PartialEq)]
pub(crate) struct Admission {
    /// An unregistered site to insert (before the device is even looked at).
    pub(crate) new_site: bool,
    /// A device to insert.
    pub(crate) new_device: bool,
    /// Why the record is kept as a dead letter instead, if it is.
    pub(crate) refused: Option<(RejectReason, String)>,
}

impl Registry {
    pub(crate) fn new(strict: bool, limits: Limits) -> Registry {
        Registry {
            strict,
            limits,
            ..Default::default()
        }
    }

    /// Forget everything but the settings, before reading it all back (after a rolled-back
    /// batch or a retention pass).
    pub(crate) fn clear(&mut self) {
        *self = Registry::new(self.strict, self.limits);
    }

    /// Remember a site read back from the database.
    pub(crate) fn load_site(&mut self, site: String, registered: bool) {
        self.unregistered += usize::from(!registered);
        self.sites.insert(site, registered);
    }

    /// Decide on a record's site and device: a strict registry refuses an unknown site, and so
    /// does the cap on unregistered sites (any topic would otherwise create a site); a site at
    /// its cap of devices refuses a new one. Unknown sites are otherwise kept as unregistered
    /// ones the office sees: nothing is dropped.
    pub(crate) fn admit(&mut self, site: &str, device: &str) -> Admission {
        let mut admission = Admission {
            new_site: false,
            new_device: false,
            refused: None,
        };
        if !self.sites.contains_key(site) {
            if self.strict {
                admission.refused = Some((
                    RejectReason::UnknownSite,
                    "site is not in the strict registry".into(),
                ));
                return admission;
            }
            if self.unregistered >= self.limits.unregistered_sites {
                admission.refused = Some((
                    RejectReason::UnknownSite,
                    format!(
                        "site is not in the registry and {} unregistered sites exist already \
                         ([store] max_unregistered_sites)",
                        self.unregistered
                    ),
                ));
                return admission;
            }
            self.sites.insert(site.to_string(), false);
            self.unregistered += 1;
            admission.new_site = true;
        }
        if self.device(site, device).is_none() {
            let n = self.devices.get(site).map_or(0, HashMap::len);
            if n >= self.limits.devices_per_site {
                admission.refused = Some((
                    RejectReason::UnknownDevice,
                    format!("site has {n} devices already ([store] max_devices_per_site)"),
                ));
                return admission;
            }
            self.set_device(site, device, DeviceState::default());
            admission.new_device = true;
        }
        admission
    }

    pub(crate) fn device(&self, site: &str, device: &str) -> Option<&DeviceState> {
        self.devices.get(site)?.get(device)
    }

    pub(crate) fn set_device(&mut self, site: &str, device: &str, state: DeviceState) {
        let devices = match self.devices.get_mut(site) {
            Some(d) => d,
            None => self.devices.entry(site.to_string()).or_default(),
        };
        devices.insert(device.to_string(), state);
    }

    /// The newest event time known for a site.
    pub(crate) fn newest_ts(&self, site: &str) -> Option<i64> {
        self.latest.get(site).map(|l| l.reading.ts.ms())
    }

    /// The fleet clock from the sites' newest readings: registered sites when any reports.
    pub(crate) fn fleet_median(&self) -> Option<i64> {
        let newest = |registered: bool| -> Vec<i64> {
            self.latest
                .iter()
                .filter(|(site, _)| !registered || self.sites.get(*site) == Some(&true))
                .map(|(_, l)| l.reading.ts.ms())
                .collect()
        };
        let registered = newest(true);
        fleet_median(if registered.is_empty() {
            newest(false)
        } else {
            registered
        })
    }

    /// After a commit: remember the batch's newest readings (as (site, latest)) and hand them,
    /// with the fleet clock, to the hot state the pages read.
    pub(crate) fn committed(&mut self, latest: Vec<(String, Latest)>, hot: &Hot) {
        hot.update(latest.iter().cloned());
        self.latest.extend(latest);
        self.advance_clock(hot);
    }

    /// Hand everything loaded to a fresh hot state.
    pub(crate) fn warm(&self, hot: &Hot) {
        hot.update(self.latest.clone());
        self.advance_clock(hot);
    }

    fn advance_clock(&self, hot: &Hot) {
        if let Some(t) = self.fleet_median() {
            hot.advance_fleet_clock(t);
        }
    }
}

/// A device's state after a status message: the last will carries only the state, so what it
/// does not say is kept from before.
pub(crate) fn device_state(old: Option<&DeviceState>, status: &Status) -> DeviceState {
    let state = match status.state {
        StatusState::Online => "online",
        StatusState::Offline => "offline",
    };
    DeviceState {
        state: Some(state.to_string()),
        fw: status.fw.clone().or_else(|| old.and_then(|d| d.fw.clone())),
        boot: status.boot.or_else(|| old.and_then(|d| d.boot)),
        interval_s: status.interval_s.or_else(|| old.and_then(|d| d.interval_s)),
    }
}

/// Dead letters per source, kept in memory so an insert never counts the table.
#[derive(Debug, Default)]
pub(crate) struct DeadCounts {
    total: u64,
    by_source: HashMap<String, u64>,
}

/// What to delete before one more dead letter of a source is kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MakeRoom {
    Nothing,
    /// The source is at its cap: its own oldest goes.
    OldestOfSource,
    /// The table is at its cap: the oldest of all goes.
    OldestOfAll,
}

impl DeadCounts {
    /// Count dead letters read back from the database.
    pub(crate) fn load(&mut self, source: String, n: i64) {
        let n = n.max(0) as u64;
        self.total += n;
        *self.by_source.entry(source).or_default() += n;
    }

    /// Keep the source's letters bounded first, so a flood from one source does not push out
    /// what the others' rejections say.
    pub(crate) fn make_room(&self, source: &str, caps: Caps) -> MakeRoom {
        if self.by_source.get(source).copied().unwrap_or(0) >= caps.per_source.max(1) {
            MakeRoom::OldestOfSource
        } else if self.total >= caps.total.max(1) {
            MakeRoom::OldestOfAll
        } else {
            MakeRoom::Nothing
        }
    }

    /// `n` letters of `source` were deleted.
    pub(crate) fn forget(&mut self, source: &str, n: u64) {
        self.total = self.total.saturating_sub(n);
        if let Some(count) = self.by_source.get_mut(source) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                self.by_source.remove(source);
            }
        }
    }

    /// One letter of `source` was kept.
    pub(crate) fn kept(&mut self, source: &str) {
        self.total += 1;
        match self.by_source.get_mut(source) {
            Some(n) => *n += 1,
            None => {
                self.by_source.insert(source.to_string(), 1);
            }
        }
    }
}

/// Who sent a rejected message, as far as the topic tells: the site level of an MQTT topic
/// (`dust/v1/{site}`), the peer address of an HJ 212 connection without its port, else the
/// topic itself.
pub(crate) fn source_of(topic: &str) -> &str {
    if let Some(peer) = topic.strip_prefix("hj212-tcp://") {
        let host = match peer.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => peer,
        };
        return &topic[..topic.len() - peer.len() + host.len()];
    }
    match topic.match_indices('/').nth(2) {
        Some((i, _)) => &topic[..i],
        None => topic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(sites: usize, devices: usize) -> Limits {
        Limits {
            unregistered_sites: sites,
            devices_per_site: devices,
            dead_letters: Caps {
                total: 3,
                per_source: 2,
            },
        }
    }

    #[test]
    fn a_new_site_and_device_are_created_once() {
        let mut r = Registry::new(false, limits(5, 5));
        let first = r.admit("s1", "d1");
        assert!(first.new_site && first.new_device && first.refused.is_none());
        let again = r.admit("s1", "d1");
        assert!(!again.new_site && !again.new_device && again.refused.is_none());
        let other = r.admit("s1", "d2");
        assert!(!other.new_site && other.new_device);
    }

    #[test]
    fn a_strict_registry_refuses_unknown_sites_but_takes_registered_ones() {
        let mut r = Registry::new(true, limits(5, 5));
        let a = r.admit("s1", "d1");
        assert_eq!(
            a.refused.map(|(reason, _)| reason),
            Some(RejectReason::UnknownSite)
        );
        assert!(!a.new_site && r.sites.is_empty());
        r.load_site("s1".into(), true);
        assert!(r.admit("s1", "d1").refused.is_none());
    }

    #[test]
    fn caps_on_unregistered_sites_and_devices_per_site() {
        let mut r = Registry::new(false, limits(1, 1));
        assert!(r.admit("s1", "d1").refused.is_none());
        let site = r.admit("s2", "d1");
        let (reason, detail) = site.refused.expect("second unregistered site refused");
        assert_eq!(reason, RejectReason::UnknownSite);
        assert!(detail.contains("max_unregistered_sites"), "{detail}");
        let device = r.admit("s1", "d2");
        let (reason, detail) = device.refused.expect("second device refused");
        assert_eq!(reason, RejectReason::UnknownDevice);
        assert!(detail.contains("1 devices already"), "{detail}");
        // A registered site does not count against the unregistered cap.
        r.load_site("s3".into(), true);
        assert!(r.admit("s3", "d1").refused.is_none());
    }

    #[test]
    fn a_site_created_before_its_device_is_refused_stays_created() {
        let mut r = Registry::new(false, limits(5, 0));
        // devices_per_site 0 is raised to 1 by Limits::of only; here the device is refused.
        let a = r.admit("s1", "d1");
        assert!(a.new_site && !a.new_device);
        assert_eq!(
            a.refused.map(|(reason, _)| reason),
            Some(RejectReason::UnknownDevice)
        );
        assert_eq!(r.sites.get("s1"), Some(&false));
    }

    #[test]
    fn dead_letters_make_room_per_source_first_then_in_all() {
        let caps = limits(0, 0).dead_letters;
        let mut d = DeadCounts::default();
        assert_eq!(d.make_room("a", caps), MakeRoom::Nothing);
        d.kept("a");
        d.kept("a");
        assert_eq!(d.make_room("a", caps), MakeRoom::OldestOfSource);
        assert_eq!(d.make_room("b", caps), MakeRoom::Nothing);
        d.kept("b");
        assert_eq!(d.make_room("c", caps), MakeRoom::OldestOfAll);
        d.forget("a", 1);
        assert_eq!(d.make_room("a", caps), MakeRoom::Nothing);
        d.forget("zzz", 5);
        d.load("c".into(), -3);
        assert_eq!(d.make_room("c", caps), MakeRoom::Nothing);
    }

    #[test]
    fn a_last_will_keeps_what_it_does_not_say() {
        let old = DeviceState {
            state: Some("online".into()),
            fw: Some("1.2".into()),
            boot: Some(3),
            interval_s: Some(60),
        };
        let will: Status = serde_json::from_str(r#"{"state":"offline"}"#).expect("status");
        let new = device_state(Some(&old), &will);
        assert_eq!(new.state.as_deref(), Some("offline"));
        assert_eq!(
            (new.fw.as_deref(), new.boot, new.interval_s),
            (Some("1.2"), Some(3), Some(60))
        );
    }

    #[test]
    fn sources() {
        assert_eq!(source_of("dust/v1/s1/d1/reading"), "dust/v1/s1");
        assert_eq!(source_of("dust/v1/city/level"), "dust/v1/city");
        assert_eq!(
            source_of("hj212-tcp://127.0.0.1:40000"),
            "hj212-tcp://127.0.0.1"
        );
        assert_eq!(source_of("hj212-tcp://[::1]:40000"), "hj212-tcp://[::1]");
        assert_eq!(source_of("junk"), "junk");
        assert_eq!(source_of("a/b"), "a/b");
    }
}
