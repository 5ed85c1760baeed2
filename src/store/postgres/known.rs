//! What the PostgreSQL writer remembers between batches (sites, devices, each site's newest
//! reading, dead-letter counts), the caps on what messages may create, and admitting a record's
//! site and device. Other instances may register sites and devices too: every insert here is
//! `ON CONFLICT DO NOTHING`, so a stale memory costs a no-op, never an error.

use crate::store::dead_letters::source_of;
use crate::store::hot::fleet_median;
use crate::store::known::{DeviceState, Limits};
use crate::store::{Latest, StoreError};
use dustwatch_protocol::{Reading, RejectReason};
use postgres::{GenericClient, Transaction};
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub(super) struct Known {
    pub(super) strict: bool,
    pub(super) limits: Limits,
    /// site id -> registered
    pub(super) sites: HashMap<String, bool>,
    unregistered: usize,
    /// site -> device -> state
    devices: HashMap<String, HashMap<String, DeviceState>>,
    pub(super) latest: HashMap<String, Latest>,
    dead_total: u64,
    dead_by_source: HashMap<String, u64>,
}

impl Known {
    pub(super) fn new(strict: bool, limits: Limits) -> Known {
        Known {
            strict,
            limits,
            ..Default::default()
        }
    }

    /// Forget everything and read it back (after a rolled-back batch or a retention pass).
    pub(super) fn reload(&mut self, c: &mut impl GenericClient) -> Result<(), StoreError> {
        *self = Known {
            strict: self.strict,
            limits: self.limits,
            ..Default::default()
        };
        self.load(c)
    }

    pub(super) fn load(&mut self, c: &mut impl GenericClient) -> Result<(), StoreError> {
        for row in c.query("SELECT id, registered FROM sites", &[])? {
            let registered: bool = row.get(1);
            self.unregistered += usize::from(!registered);
            self.sites.insert(row.get(0), registered);
        }
        for row in c.query(
            "SELECT site, device, state, fw, boot, interval_s FROM devices",
            &[],
        )? {
            let state = DeviceState {
                state: row.get(2),
                fw: row.get(3),
                boot: row
                    .get::<_, Option<i64>>(4)
                    .and_then(|v| u32::try_from(v).ok()),
                interval_s: row
                    .get::<_, Option<i64>>(5)
                    .and_then(|v| u32::try_from(v).ok()),
            };
            self.set_device(row.get(0), row.get(1), state);
        }
        for row in c.query(
            "SELECT source, count(*) FROM dead_letters GROUP BY source",
            &[],
        )? {
            let n = row.get::<_, i64>(1).max(0) as u64;
            self.dead_total += n;
            self.dead_by_source.insert(row.get(0), n);
        }
        for (site, latest) in super::reader::read_latest(c)? {
            self.latest.insert(site, latest);
        }
        Ok(())
    }

    /// Register the record's site and device, or keep the record as a dead letter when they
    /// are refused (`payload` rebuilds its raw form). Returns false when refused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit(
        &mut self,
        tx: &mut Transaction,
        received: i64,
        site: &str,
        device: &str,
        kind: &str,
        payload: impl FnOnce() -> Vec<u8>,
        rejected: &mut BTreeMap<RejectReason, u64>,
    ) -> Result<bool, StoreError> {
        let refused = match self.admit_site(tx, site)? {
            None => self.admit_device(tx, site, device)?,
            refused => refused,
        };
        let Some((reason, detail)) = refused else {
            return Ok(true);
        };
        let topic = format!("{site}/{device}/{kind}");
        self.dead_letter(tx, received, &topic, &payload(), reason, &detail)?;
        *rejected.entry(reason).or_default() += 1;
        Ok(false)
    }

    fn admit_site(
        &mut self,
        tx: &mut Transaction,
        site: &str,
    ) -> Result<Option<(RejectReason, String)>, StoreError> {
        if self.sites.contains_key(site) {
            return Ok(None);
        }
        if self.strict {
            return Ok(Some((
                RejectReason::UnknownSite,
                "site is not in the strict registry".into(),
            )));
        }
        if self.unregistered >= self.limits.unregistered_sites {
            return Ok(Some((
                RejectReason::UnknownSite,
                format!(
                    "site is not in the registry and {} unregistered sites exist already \
                     ([store] max_unregistered_sites)",
                    self.unregistered
                ),
            )));
        }
        // Unknown sites are shown to the office as unregistered; nothing is dropped.
        tx.execute(
            "INSERT INTO sites (id, name, street, kind, phase, registered) \
             VALUES ($1, $1, '', 'construction', 'idle', false) ON CONFLICT DO NOTHING",
            &[&site],
        )?;
        self.sites.insert(site.to_string(), false);
        self.unregistered += 1;
        Ok(None)
    }

    fn admit_device(
        &mut self,
        tx: &mut Transaction,
        site: &str,
        device: &str,
    ) -> Result<Option<(RejectReason, String)>, StoreError> {
        if self.device(site, device).is_some() {
            return Ok(None);
        }
        let n = self.devices.get(site).map_or(0, HashMap::len);
        if n >= self.limits.devices_per_site {
            return Ok(Some((
                RejectReason::UnknownDevice,
                format!("site has {n} devices already ([store] max_devices_per_site)"),
            )));
        }
        tx.execute(
            "INSERT INTO devices (site, device) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&site, &device],
        )?;
        self.set_device(site.to_string(), device.to_string(), DeviceState::default());
        Ok(None)
    }

    /// Keep one rejected message, making room first: the source's oldest when it is at its
    /// cap, else the oldest of all when the table is.
    pub(super) fn dead_letter(
        &mut self,
        tx: &mut Transaction,
        received: i64,
        topic: &str,
        payload: &[u8],
        reason: RejectReason,
        detail: &str,
    ) -> Result<(), StoreError> {
        let caps = self.limits.dead_letters;
        let source = source_of(topic);
        if self.dead_by_source.get(source).copied().unwrap_or(0) >= caps.per_source.max(1) {
            let n = tx.execute(
                "DELETE FROM dead_letters WHERE id = \
                 (SELECT min(id) FROM dead_letters WHERE source = $1)",
                &[&source],
            )?;
            self.forget_dead(source, n);
        } else if self.dead_total >= caps.total.max(1) {
            let gone = tx.query_opt(
                "DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters) \
                 RETURNING source",
                &[],
            )?;
            if let Some(row) = gone {
                self.forget_dead(&row.get::<_, String>(0), 1);
            }
        }
        tx.execute(
            "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload, source) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &received,
                &topic,
                &reason.label(),
                &detail,
                &payload,
                &source,
            ],
        )?;
        self.dead_total += 1;
        *self.dead_by_source.entry(source.to_string()).or_default() += 1;
        Ok(())
    }

    fn forget_dead(&mut self, source: &str, n: u64) {
        self.dead_total = self.dead_total.saturating_sub(n);
        if let Some(count) = self.dead_by_source.get_mut(source) {
            *count = count.saturating_sub(n);
        }
    }

    pub(super) fn device(&self, site: &str, device: &str) -> Option<&DeviceState> {
        self.devices.get(site)?.get(device)
    }

    pub(super) fn set_device(&mut self, site: String, device: String, state: DeviceState) {
        self.devices.entry(site).or_default().insert(device, state);
    }

    /// The newest event time known for a site.
    pub(super) fn newest_ts(&self, site: &str) -> Option<i64> {
        self.latest.get(site).map(|l| l.reading.ts)
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

    pub(super) fn remember(&mut self, site: String, device: String, reading: Reading, at: i64) {
        self.latest.insert(
            site,
            Latest {
                device,
                reading,
                received_ms: at,
            },
        );
    }
}
