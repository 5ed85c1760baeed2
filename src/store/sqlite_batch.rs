//! One SQLite batch inside its transaction: one function per record kind (each admits the
//! record's site and device, inserts it, and appends it to the outbox when it is fresh), then the
//! per-batch rollups, newest readings and last-seen times.

use super::batch::{flags_json, BatchTally};
use super::known::{admit, Known};
use super::outbox::{self, OutboxKind};
use super::registry::device_state;
use super::schema::{self, ROLLUPS};
use super::{DeadLetter, StoreError};
use dustwatch_protocol::{CityLevel, Event, EventTime, Reading, Status};
use rusqlite::{params, Transaction};
use std::ops::{Deref, DerefMut};

pub(super) const INSERT_READING: &str =
    "INSERT OR IGNORE INTO readings (site, ts, device, boot, seq, \
     interval_s, pm25, pm10, tsp, noise_dba, temp_c, rh_pct, pressure_kpa, wind_ms, wind_deg, \
     flags, received_ms, no2, so2, o3, co) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21)";

/// What one batch has written so far, borrowed from the batch's records.
pub(super) struct BatchWrite<'a> {
    tally: BatchTally<'a>,
    outbox: bool,
    /// Queue fresh readings for HJ 212 forwarding.
    forward: bool,
}

/// The tally's fields read as the batch's own in every record kind's function, wherever the
/// kind is written.
impl<'a> Deref for BatchWrite<'a> {
    type Target = BatchTally<'a>;
    fn deref(&self) -> &BatchTally<'a> {
        &self.tally
    }
}

impl DerefMut for BatchWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tally
    }
}

impl<'a> BatchWrite<'a> {
    pub(super) fn new(received: i64, outbox: bool, forward: bool) -> BatchWrite<'a> {
        BatchWrite {
            tally: BatchTally::new(received),
            outbox,
            forward,
        }
    }

    pub(super) fn into_tally(self) -> BatchTally<'a> {
        self.tally
    }

    /// `insert` is [`INSERT_READING`], prepared once per batch by the caller: the statement
    /// cache hashes the SQL text on every lookup.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reading(
        &mut self,
        tx: &Transaction,
        insert: &mut rusqlite::CachedStatement<'_>,
        known: &mut Known,
        site: &'a str,
        device: &'a str,
        r: &'a Reading,
    ) -> Result<(), StoreError> {
        let received = self.received;
        if !self.admit(tx, known, site, device, "reading", || r.encode())? {
            return Ok(());
        }
        let n = insert.execute(params![
            site,
            r.ts.ms(),
            device,
            r.boot,
            r.seq,
            r.interval_s,
            r.pm25,
            r.pm10,
            r.tsp,
            r.noise_dba,
            r.temp_c,
            r.rh_pct,
            r.pressure_kpa,
            r.wind_ms,
            r.wind_deg,
            flags_json(r),
            received,
            r.no2,
            r.so2,
            r.o3,
            r.co
        ])?;
        if n == 0 {
            self.out.duplicates += 1;
            return Ok(());
        }
        if self.outbox {
            outbox::push(
                tx,
                OutboxKind::Reading,
                Some(site),
                Some(device),
                Some(r.boot),
                Some(r.seq),
                r.ts.ms(),
            )?;
        }
        if self.forward {
            super::forward_queue::push(tx, site, device, r.boot, r.seq, r.ts.ms())?;
        }
        let last = self.out.fresh.len().saturating_sub(1);
        self.tally.stored_reading(known, last, site, device, r);
        Ok(())
    }

    /// Whether the store takes a record of this site and device (strict registry, caps); a
    /// refused one becomes a dead letter, counted in the batch's outcome.
    fn admit(
        &mut self,
        tx: &Transaction,
        known: &mut Known,
        site: &str,
        device: &str,
        kind: &str,
        payload: impl FnOnce() -> Vec<u8>,
    ) -> Result<bool, StoreError> {
        admit(known, tx, &mut self.tally, (site, device, kind), payload)
    }

    pub(super) fn event(
        &mut self,
        tx: &Transaction,
        known: &mut Known,
        site: &'a str,
        device: &'a str,
        event: &Event,
    ) -> Result<(), StoreError> {
        let received = self.received;
        let payload = || serde_json::to_vec(event).unwrap_or_default();
        if !self.admit(tx, known, site, device, "event", payload)? {
            return Ok(());
        }
        let n = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (site, device, boot, seq, ts, kind, received_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                site,
                device,
                event.boot,
                event.seq,
                event.ts.ms(),
                event.kind.name(),
                received
            ])?;
        if n == 0 {
            self.out.duplicates += 1;
        } else {
            self.out.other += 1;
            self.fresh_last();
            if self.outbox {
                outbox::push(
                    tx,
                    OutboxKind::Event,
                    Some(site),
                    Some(device),
                    Some(event.boot),
                    Some(event.seq),
                    event.ts.ms(),
                )?;
            }
        }
        self.tally.seen(site, device);
        Ok(())
    }

    pub(super) fn status(
        &mut self,
        tx: &Transaction,
        known: &mut Known,
        site: &'a str,
        device: &'a str,
        status: &Status,
    ) -> Result<(), StoreError> {
        let received = self.received;
        let payload = || serde_json::to_vec(status).unwrap_or_default();
        if !self.admit(tx, known, site, device, "status", payload)? {
            return Ok(());
        }
        let new = device_state(known.device(site, device), status);
        // A retained status is redelivered at every reconnect: history keeps changes only.
        if known.device(site, device) != Some(&new) {
            tx.prepare_cached(
                "INSERT INTO status_history (site, device, received_ms, ts, state, fw, boot, \
                 interval_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                site,
                device,
                received,
                status.ts.map(EventTime::ms),
                new.state,
                new.fw,
                new.boot,
                new.interval_s
            ])?;
            tx.prepare_cached(
                "UPDATE devices SET state = ?3, fw = ?4, boot = ?5, interval_s = ?6 \
                 WHERE site = ?1 AND device = ?2",
            )?
            .execute(params![
                site,
                device,
                new.state,
                new.fw,
                new.boot,
                new.interval_s
            ])?;
            known.set_device(site, device, new);
        }
        self.out.other += 1;
        Ok(())
    }

    pub(super) fn city_level(
        &mut self,
        tx: &Transaction,
        level: &CityLevel,
        source: &str,
    ) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO city_levels (ts, level, source) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![level.ts.ms(), level.level.name(), source])?;
        self.out.other += 1;
        self.fresh_last();
        if self.outbox {
            outbox::push(
                tx,
                OutboxKind::CityLevel,
                None,
                None,
                None,
                None,
                level.ts.ms(),
            )?;
        }
        Ok(())
    }

    pub(super) fn dead_letter(
        &mut self,
        tx: &Transaction,
        known: &mut Known,
        d: &DeadLetter,
    ) -> Result<(), StoreError> {
        known.dead_letter(tx, self.received, &d.topic, &d.payload, d.reason, &d.detail)?;
        self.tally.refused(d.reason);
        Ok(())
    }

    /// Merge the batch's rollups, newest readings and last-seen times into their tables.
    pub(super) fn finish(&self, tx: &Transaction) -> Result<(), StoreError> {
        for (i, (table, _)) in ROLLUPS.iter().enumerate() {
            let mut stmt = tx.prepare_cached(&schema::rollup_upsert(table))?;
            for ((site, b), aggs) in &self.deltas[i] {
                let mut values: Vec<rusqlite::types::Value> =
                    vec![site.to_string().into(), (*b).into()];
                for a in aggs {
                    values.push((a.n as f64).into());
                    values.push(a.sum.into());
                    values.push(a.lo.into());
                    values.push(a.hi.into());
                }
                stmt.execute(rusqlite::params_from_iter(values))?;
            }
        }
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO latest (site, device, reading, received_ms) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (site, (device, reading)) in &self.newest {
            let json =
                serde_json::to_string(reading).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            stmt.execute(params![site, device, json, self.received])?;
        }
        let mut stmt = tx.prepare_cached(
            "UPDATE devices SET last_seen_ms = ?3 WHERE site = ?1 AND device = ?2",
        )?;
        for ((site, device), at) in &self.seen {
            stmt.execute(params![site, device, at])?;
        }
        Ok(())
    }
}
