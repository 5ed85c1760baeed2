//! What the store writer remembers between batches so it does not ask SQLite on every reading
//! (sites, devices, each site's newest reading, dead-letter counts), and the caps on what
//! messages may create.

use super::config::StoreConfig;
use super::dead_letters::{Caps, DeadLetters};
use super::hot::fleet_median;
use super::reader::read_latest;
use super::{Latest, StoreError};
use dustwatch_protocol::RejectReason;
use rusqlite::{params, Connection, Transaction};
use std::collections::{BTreeMap, HashMap};

/// What the writer remembers between batches so it does not ask SQLite on every reading.
#[derive(Default)]
pub(super) struct Known {
    pub(super) strict: bool,
    pub(super) limits: Limits,
    /// site id -> registered
    pub(super) sites: HashMap<String, bool>,
    pub(super) unregistered: usize,
    pub(super) dead: DeadLetters,
    /// site -> device -> state; nested so a lookup borrows the record's strings.
    pub(super) devices: HashMap<String, HashMap<String, DeviceState>>,
    pub(super) latest: HashMap<String, Latest>,
}

/// Caps on what messages may create.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Limits {
    pub(super) unregistered_sites: usize,
    pub(super) devices_per_site: usize,
    pub(super) dead_letters: Caps,
}

impl Limits {
    pub(super) fn of(config: &StoreConfig) -> Limits {
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

/// Whether a record's site and device may be stored.
pub(super) enum Admit {
    Yes,
    Refused(RejectReason, String),
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct DeviceState {
    pub(super) state: Option<String>,
    pub(super) fw: Option<String>,
    pub(super) boot: Option<u32>,
    pub(super) interval_s: Option<u32>,
}

impl Known {
    /// Forget everything and read it back (after a rolled-back batch or a retention pass).
    pub(super) fn reload(&mut self, conn: &Connection) -> Result<(), StoreError> {
        *self = Known {
            strict: self.strict,
            limits: self.limits,
            ..Default::default()
        };
        self.load(conn)
    }

    pub(super) fn load(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let mut stmt = conn.prepare("SELECT id, registered FROM sites")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        for row in rows {
            let (id, reg) = row?;
            self.unregistered += usize::from(!reg);
            self.sites.insert(id, reg);
        }
        self.dead = DeadLetters::load(conn)?;
        let mut stmt =
            conn.prepare("SELECT site, device, state, fw, boot, interval_s FROM devices")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                DeviceState {
                    state: r.get(2)?,
                    fw: r.get(3)?,
                    boot: r.get(4)?,
                    interval_s: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let ((site, device), v) = row?;
            self.devices.entry(site).or_default().insert(device, v);
        }
        drop(stmt);
        for (site, latest) in read_latest(conn)? {
            self.latest.insert(site, latest);
        }
        Ok(())
    }

    /// Make sure the site is known: a strict registry refuses an unknown one, and so does the
    /// cap on unregistered sites (any topic would otherwise create a site).
    pub(super) fn admit_site(&mut self, tx: &Transaction, site: &str) -> Result<Admit, StoreError> {
        if self.sites.contains_key(site) {
            return Ok(Admit::Yes);
        }
        if self.strict {
            return Ok(Admit::Refused(
                RejectReason::UnknownSite,
                "site is not in the strict registry".into(),
            ));
        }
        if self.unregistered >= self.limits.unregistered_sites {
            return Ok(Admit::Refused(
                RejectReason::UnknownSite,
                format!(
                    "site is not in the registry and {} unregistered sites exist already \
                     ([store] max_unregistered_sites)",
                    self.unregistered
                ),
            ));
        }
        // Unknown sites are shown to the office as unregistered; nothing is dropped.
        tx.execute(
            "INSERT OR IGNORE INTO sites (id, name, street, kind, phase, registered) \
             VALUES (?1, ?1, '', 'construction', 'idle', 0)",
            params![site],
        )?;
        self.sites.insert(site.to_string(), false);
        self.unregistered += 1;
        Ok(Admit::Yes)
    }

    pub(super) fn admit_device(
        &mut self,
        tx: &Transaction,
        site: &str,
        device: &str,
    ) -> Result<Admit, StoreError> {
        if self.device(site, device).is_some() {
            return Ok(Admit::Yes);
        }
        let n = self.devices.get(site).map_or(0, HashMap::len);
        if n >= self.limits.devices_per_site {
            return Ok(Admit::Refused(
                RejectReason::UnknownDevice,
                format!("site has {n} devices already ([store] max_devices_per_site)"),
            ));
        }
        tx.execute(
            "INSERT OR IGNORE INTO devices (site, device) VALUES (?1, ?2)",
            params![site, device],
        )?;
        self.set_device(site, device, DeviceState::default());
        Ok(Admit::Yes)
    }

    /// Keep a rejected message (bounded per source and in all).
    pub(super) fn dead_letter(
        &mut self,
        tx: &Transaction,
        received: i64,
        topic: &str,
        payload: &[u8],
        reason: RejectReason,
        detail: &str,
    ) -> Result<(), StoreError> {
        let caps = self.limits.dead_letters;
        self.dead
            .insert(tx, caps, received, topic, payload, reason, detail)
    }

    /// The fleet clock from the sites' newest readings: registered sites when any reports.
    pub(super) fn fleet_median(&self) -> Option<i64> {
        let newest = |registered: bool| -> Vec<i64> {
            self.latest
                .iter()
                .filter(|(site, _)| !registered || self.sites.get(*site) == Some(&true))
                .map(|(_, l)| l.reading.ts)
                .collect()
        };
        let registered = newest(true);
        fleet_median(if registered.is_empty() {
            newest(false)
        } else {
            registered
        })
    }

    pub(super) fn device(&self, site: &str, device: &str) -> Option<&DeviceState> {
        self.devices.get(site)?.get(device)
    }

    pub(super) fn set_device(&mut self, site: &str, device: &str, state: DeviceState) {
        self.devices
            .entry(site.to_string())
            .or_default()
            .insert(device.to_string(), state);
    }
}

/// Register the site and device of a record, or keep the record as a dead letter when they are
/// refused (`payload` rebuilds its raw form). Returns false when refused.
#[allow(clippy::too_many_arguments)]
pub(super) fn admit(
    known: &mut Known,
    tx: &Transaction,
    received: i64,
    site: &str,
    device: &str,
    kind: &str,
    payload: impl FnOnce() -> Vec<u8>,
    rejected: &mut BTreeMap<RejectReason, u64>,
) -> Result<bool, StoreError> {
    let verdict = match known.admit_site(tx, site)? {
        Admit::Yes => known.admit_device(tx, site, device)?,
        refused => refused,
    };
    let Admit::Refused(reason, detail) = verdict else {
        return Ok(true);
    };
    known.dead_letter(
        tx,
        received,
        &format!("{site}/{device}/{kind}"),
        &payload(),
        reason,
        &detail,
    )?;
    *rejected.entry(reason).or_default() += 1;
    Ok(false)
}
