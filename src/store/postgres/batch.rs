//! One PostgreSQL batch inside its transaction: one function per record kind (admit the site
//! and device, insert, append to the outbox when fresh). Readings, the bulk of every batch, go
//! in one `unnest` insert whose `RETURNING` says which were new; rollups, newest readings and
//! last-seen times are merged once per batch.

use super::known::{admit, dead_letter};
use super::schema;
use crate::store::batch::{flags_json, BatchTally};
use crate::store::outbox::OutboxKind;
use crate::store::registry::{device_state, Registry};
use crate::store::schema::ROLLUPS;
use crate::store::{Record, StoreError};
use dustwatch_protocol::{CityLevel, Event, EventTime, Metric, Reading, Status};
use postgres::types::ToSql;
use postgres::Transaction;
use std::collections::HashSet;

type Key = (String, i64, String, i64, i64);

/// A reading admitted for insertion: its index in the batch and its record.
type Pending<'a> = (usize, &'a str, &'a str, &'a Reading);

pub(super) struct PgBatch<'a> {
    tally: BatchTally<'a>,
    outbox: bool,
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence number {seq} too large")))
}

impl<'a> PgBatch<'a> {
    pub(super) fn new(received: i64, outbox: bool) -> PgBatch<'a> {
        PgBatch {
            tally: BatchTally::new(received),
            outbox,
        }
    }

    pub(super) fn into_tally(self) -> BatchTally<'a> {
        self.tally
    }

    pub(super) fn write(
        &mut self,
        tx: &mut Transaction,
        known: &mut Registry,
        batch: &'a [Record],
    ) -> Result<(), StoreError> {
        if self.outbox {
            // Outbox ids must become visible in id order, or the exporter's cursor could pass
            // an id a slower transaction commits later: writers of the outbox take turns.
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&super::schema::OUTBOX_LOCK],
            )?;
        }
        let mut pending: Vec<Pending> = Vec::new();
        for (i, record) in batch.iter().enumerate() {
            self.tally.begin_record();
            match record {
                Record::Reading {
                    site,
                    device,
                    reading,
                } => {
                    let what = (site.as_str(), device.as_str(), "reading");
                    if admit(known, tx, &mut self.tally, what, || reading.encode())? {
                        pending.push((i, site, device, reading));
                    }
                }
                Record::Event {
                    site,
                    device,
                    event,
                } => self.event(tx, known, i, site, device, event)?,
                Record::Status {
                    site,
                    device,
                    status,
                } => self.status(tx, known, site, device, status)?,
                Record::CityLevel { level, source } => self.city_level(tx, i, level, source)?,
                Record::DeadLetter(d) => {
                    let t = &mut self.tally;
                    dead_letter(known, tx, t, &d.topic, &d.payload, d.reason, &d.detail)?;
                }
                Record::CommandReply {
                    site,
                    device,
                    reply,
                } => self.command_reply(tx, known, site, device, reply)?,
            }
        }
        self.readings(tx, known, &pending)?;
        self.finish(tx)
    }

    /// A device's reply: answered, a duplicate, or (never sent to that device) a
    /// `store_refused` dead letter, as in the SQLite store.
    fn command_reply(
        &mut self,
        tx: &mut Transaction,
        known: &mut Registry,
        site: &str,
        device: &str,
        reply: &dustwatch_protocol::CommandReply,
    ) -> Result<(), StoreError> {
        use crate::store::commands::ReplyOutcome;
        let t = &mut self.tally;
        match super::commands::record_reply(tx, site, device, reply, t.received)? {
            ReplyOutcome::Recorded => {
                t.out.other += 1;
                t.fresh_last();
            }
            ReplyOutcome::Duplicate => t.out.duplicates += 1,
            ReplyOutcome::Unknown => {
                // The store does not know the configured root: site and device say where from.
                let topic = format!("{site}/{device}/reply");
                let detail = format!("no command `{}` was sent to {site}/{device}", reply.id);
                let reason = dustwatch_protocol::RejectReason::StoreRefused;
                dead_letter(known, tx, t, &topic, &reply.encode(), reason, &detail)?;
            }
        }
        Ok(())
    }

    fn readings(
        &mut self,
        tx: &mut Transaction,
        known: &Registry,
        pending: &[Pending<'a>],
    ) -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        // A key twice in one batch (a publish repeated before the ack) is stored once.
        let mut first: HashSet<Key> = HashSet::with_capacity(pending.len());
        let mut unique: Vec<&Pending> = Vec::with_capacity(pending.len());
        for p in pending {
            let (_, site, device, r) = p;
            if first.insert((
                site.to_string(),
                r.ts.ms(),
                device.to_string(),
                i64::from(r.boot),
                seq_i64(r.seq)?,
            )) {
                unique.push(p);
            } else {
                self.tally.out.duplicates += 1;
            }
        }
        let sites: Vec<&str> = unique.iter().map(|p| p.1).collect();
        let ts: Vec<i64> = unique.iter().map(|p| p.3.ts.ms()).collect();
        let devices: Vec<&str> = unique.iter().map(|p| p.2).collect();
        let boots: Vec<i64> = unique.iter().map(|p| i64::from(p.3.boot)).collect();
        let seqs: Vec<i64> = unique
            .iter()
            .map(|p| seq_i64(p.3.seq))
            .collect::<Result<_, _>>()?;
        let intervals: Vec<i64> = unique.iter().map(|p| i64::from(p.3.interval_s)).collect();
        let flags: Vec<Option<String>> = unique.iter().map(|p| flags_json(p.3)).collect();
        let received = vec![self.tally.received; unique.len()];
        let metrics: Vec<Vec<Option<f64>>> = Metric::ALL
            .into_iter()
            .map(|m| unique.iter().map(|p| p.3.get(m)).collect())
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &sites, &ts, &devices, &boots, &seqs, &intervals, &flags, &received,
        ];
        params.extend(metrics.iter().map(|v| v as &(dyn ToSql + Sync)));
        let stmt = tx.prepare(&schema::insert_readings())?;
        let inserted: HashSet<Key> = tx
            .query(&stmt, &params)?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        let mut fresh: Vec<&Pending> = Vec::with_capacity(inserted.len());
        for p in unique {
            let (i, site, device, r) = *p;
            let key = (
                site.to_string(),
                r.ts.ms(),
                device.to_string(),
                i64::from(r.boot),
                seq_i64(r.seq)?,
            );
            if !inserted.contains(&key) {
                self.tally.out.duplicates += 1;
                continue;
            }
            self.tally.stored_reading(known, i, site, device, r);
            fresh.push(p);
        }
        if self.outbox && !fresh.is_empty() {
            let sites: Vec<&str> = fresh.iter().map(|p| p.1).collect();
            let devices: Vec<&str> = fresh.iter().map(|p| p.2).collect();
            let boots: Vec<i64> = fresh.iter().map(|p| i64::from(p.3.boot)).collect();
            let seqs: Vec<i64> = fresh
                .iter()
                .map(|p| seq_i64(p.3.seq))
                .collect::<Result<_, _>>()?;
            let ts: Vec<i64> = fresh.iter().map(|p| p.3.ts.ms()).collect();
            tx.execute(
                "INSERT INTO outbox (kind, site, device, boot, seq, ts) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])",
                &[&(OutboxKind::Reading as i16), &sites, &devices, &boots, &seqs, &ts],
            )?;
        }
        Ok(())
    }

    fn push_outbox(
        &self,
        tx: &mut Transaction,
        kind: OutboxKind,
        key: Option<(&str, &str, i64, i64)>,
        ts: i64,
    ) -> Result<(), StoreError> {
        if !self.outbox {
            return Ok(());
        }
        let (site, device, boot, seq) = match key {
            Some((s, d, b, q)) => (Some(s), Some(d), Some(b), Some(q)),
            None => (None, None, None, None),
        };
        tx.execute(
            "INSERT INTO outbox (kind, site, device, boot, seq, ts) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&(kind as i16), &site, &device, &boot, &seq, &ts],
        )?;
        Ok(())
    }

    fn event(
        &mut self,
        tx: &mut Transaction,
        known: &mut Registry,
        i: usize,
        site: &'a str,
        device: &'a str,
        event: &Event,
    ) -> Result<(), StoreError> {
        let received = self.tally.received;
        let payload = || serde_json::to_vec(event).unwrap_or_default();
        if !admit(known, tx, &mut self.tally, (site, device, "event"), payload)? {
            return Ok(());
        }
        let (boot, seq) = (i64::from(event.boot), seq_i64(event.seq)?);
        let n = tx.execute(
            "INSERT INTO events (site, device, boot, seq, ts, kind, received_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &site,
                &device,
                &boot,
                &seq,
                &event.ts.ms(),
                &event.kind.name(),
                &received,
            ],
        )?;
        if n == 0 {
            self.tally.out.duplicates += 1;
        } else {
            self.tally.out.other += 1;
            self.tally.fresh(i);
            self.push_outbox(
                tx,
                OutboxKind::Event,
                Some((site, device, boot, seq)),
                event.ts.ms(),
            )?;
        }
        self.tally.seen(site, device);
        Ok(())
    }

    fn status(
        &mut self,
        tx: &mut Transaction,
        known: &mut Registry,
        site: &str,
        device: &str,
        status: &Status,
    ) -> Result<(), StoreError> {
        let received = self.tally.received;
        let payload = || serde_json::to_vec(status).unwrap_or_default();
        if !admit(
            known,
            tx,
            &mut self.tally,
            (site, device, "status"),
            payload,
        )? {
            return Ok(());
        }
        let new = device_state(known.device(site, device), status);
        // A retained status is redelivered at every reconnect: history keeps changes only.
        if known.device(site, device) != Some(&new) {
            let boot = new.boot.map(i64::from);
            let interval = new.interval_s.map(i64::from);
            tx.execute(
                "INSERT INTO status_history (site, device, received_ms, ts, state, fw, boot, \
                 interval_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &site,
                    &device,
                    &received,
                    &status.ts.map(EventTime::ms),
                    &new.state,
                    &new.fw,
                    &boot,
                    &interval,
                ],
            )?;
            tx.execute(
                "UPDATE devices SET state = $3, fw = $4, boot = $5, interval_s = $6 \
                 WHERE site = $1 AND device = $2",
                &[&site, &device, &new.state, &new.fw, &boot, &interval],
            )?;
            known.set_device(site, device, new);
        }
        self.tally.out.other += 1;
        Ok(())
    }

    fn city_level(
        &mut self,
        tx: &mut Transaction,
        i: usize,
        level: &CityLevel,
        source: &str,
    ) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO city_levels (ts, level, source) VALUES ($1, $2, $3) \
             ON CONFLICT (ts) DO UPDATE SET level = excluded.level, source = excluded.source",
            &[&level.ts.ms(), &level.level.name(), &source],
        )?;
        self.tally.out.other += 1;
        self.tally.fresh(i);
        self.push_outbox(tx, OutboxKind::CityLevel, None, level.ts.ms())
    }

    /// Merge the batch's rollups, newest readings and last-seen times into their tables.
    fn finish(&self, tx: &mut Transaction) -> Result<(), StoreError> {
        for (i, (table, _)) in ROLLUPS.iter().enumerate() {
            if self.tally.deltas[i].is_empty() {
                continue;
            }
            let sites: Vec<&str> = self.tally.deltas[i].keys().map(|(s, _)| *s).collect();
            let buckets: Vec<i64> = self.tally.deltas[i].keys().map(|(_, b)| *b).collect();
            let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
            for j in 0..Metric::ALL.len() {
                let aggs = || self.tally.deltas[i].values().map(move |a| a[j]);
                columns.push(aggs().map(|a| Some(a.n as f64)).collect());
                columns.push(aggs().map(|a| Some(a.sum)).collect());
                columns.push(aggs().map(|a| a.lo).collect());
                columns.push(aggs().map(|a| a.hi).collect());
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&sites, &buckets];
            params.extend(columns.iter().map(|v| v as &(dyn ToSql + Sync)));
            tx.execute(&schema::rollup_upsert(table), &params)?;
        }
        let newest = &self.tally.newest;
        if !newest.is_empty() {
            let sites: Vec<&str> = newest.keys().copied().collect();
            let devices: Vec<&str> = newest.values().map(|(d, _)| *d).collect();
            let ts: Vec<i64> = newest.values().map(|(_, r)| r.ts.ms()).collect();
            let json: Vec<String> = newest
                .values()
                .map(|(_, r)| serde_json::to_string(r))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // Another instance may have stored a newer reading of the site: keep the newest.
            tx.execute(
                "INSERT INTO latest (site, device, ts, reading, received_ms) \
                 SELECT s, d, t, r, $5 FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[]) \
                 AS v(s, d, t, r) \
                 ON CONFLICT (site) DO UPDATE SET device = excluded.device, ts = excluded.ts, \
                 reading = excluded.reading, received_ms = excluded.received_ms \
                 WHERE latest.ts <= excluded.ts",
                &[&sites, &devices, &ts, &json, &self.tally.received],
            )?;
        }
        let seen = &self.tally.seen;
        if !seen.is_empty() {
            let sites: Vec<&str> = seen.keys().map(|(s, _)| *s).collect();
            let devices: Vec<&str> = seen.keys().map(|(_, d)| *d).collect();
            let at: Vec<i64> = seen.values().copied().collect();
            tx.execute(
                "UPDATE devices SET last_seen_ms = v.at \
                 FROM unnest($1::text[], $2::text[], $3::int8[]) AS v(site, device, at) \
                 WHERE devices.site = v.site AND devices.device = v.device",
                &[&sites, &devices, &at],
            )?;
        }
        Ok(())
    }
}
