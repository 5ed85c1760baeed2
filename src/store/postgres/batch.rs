//! One PostgreSQL batch inside its transaction: one function per record kind (admit the site
//! and device, insert, append to the outbox when fresh). Readings, the bulk of every batch, go
//! in one `unnest` insert whose `RETURNING` says which were new; rollups, newest readings and
//! last-seen times are merged once per batch.

use super::known::Known;
use super::schema;
use crate::store::outbox::OutboxKind;
use crate::store::rollup::{bucket, Agg};
use crate::store::schema::ROLLUPS;
use crate::store::sqlite_batch::{device_state, flags_json};
use crate::store::{BatchOutcome, Record, StoreError};
use dustwatch_protocol::{CityLevel, Event, Metric, Reading, RejectReason, Status};
use postgres::types::ToSql;
use postgres::Transaction;
use std::collections::{BTreeMap, HashSet};

type Key = (String, i64, String, i64, i64);

/// A reading admitted for insertion: its index in the batch and its record.
type Pending<'a> = (usize, &'a str, &'a str, &'a Reading);

pub(super) struct PgBatch {
    received: i64,
    outbox: bool,
    out: BatchOutcome,
    rejected: BTreeMap<RejectReason, u64>,
    // Ordered maps: rows are upserted in key order, so two instances writing the same rows
    // lock them in the same order instead of deadlocking.
    deltas: [BTreeMap<(String, i64), [Agg; Metric::ALL.len()]>; ROLLUPS.len()],
    /// The newest reading of each site in this batch, as (device, reading).
    newest: BTreeMap<String, (String, Reading)>,
    seen: BTreeMap<(String, String), i64>,
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence number {seq} too large")))
}

impl PgBatch {
    pub(super) fn new(received: i64, outbox: bool) -> PgBatch {
        PgBatch {
            received,
            outbox,
            out: BatchOutcome::default(),
            rejected: BTreeMap::new(),
            deltas: Default::default(),
            newest: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// The outcome and the batch's newest reading per site (site -> (device, reading)).
    pub(super) fn into_outcome(self) -> (BatchOutcome, BTreeMap<String, (String, Reading)>) {
        let mut out = self.out;
        out.rejected = self.rejected.into_iter().collect();
        (out, self.newest)
    }

    pub(super) fn write(
        &mut self,
        tx: &mut Transaction,
        known: &mut Known,
        batch: &[Record],
    ) -> Result<(), StoreError> {
        let received = self.received;
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
            self.out.fresh.push(false);
            match record {
                Record::Reading {
                    site,
                    device,
                    reading,
                } => {
                    let payload = || reading.encode();
                    if known.admit(
                        tx,
                        received,
                        site,
                        device,
                        "reading",
                        payload,
                        &mut self.rejected,
                    )? {
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
                    known.dead_letter(tx, received, &d.topic, &d.payload, d.reason, &d.detail)?;
                    *self.rejected.entry(d.reason).or_default() += 1;
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
        known: &mut Known,
        site: &str,
        device: &str,
        reply: &dustwatch_protocol::CommandReply,
    ) -> Result<(), StoreError> {
        use crate::store::commands::ReplyOutcome;
        match super::commands::record_reply(tx, site, device, reply, self.received)? {
            ReplyOutcome::Recorded => {
                self.out.other += 1;
                if let Some(f) = self.out.fresh.last_mut() {
                    *f = true;
                }
            }
            ReplyOutcome::Duplicate => self.out.duplicates += 1,
            ReplyOutcome::Unknown => {
                let reason = RejectReason::StoreRefused;
                known.dead_letter(
                    tx,
                    self.received,
                    &format!("{site}/{device}/reply"),
                    &reply.encode(),
                    reason,
                    &format!("no command `{}` was sent to {site}/{device}", reply.id),
                )?;
                *self.rejected.entry(reason).or_default() += 1;
            }
        }
        Ok(())
    }

    fn readings(
        &mut self,
        tx: &mut Transaction,
        known: &Known,
        pending: &[Pending],
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
                r.ts,
                device.to_string(),
                i64::from(r.boot),
                seq_i64(r.seq)?,
            )) {
                unique.push(p);
            } else {
                self.out.duplicates += 1;
            }
        }
        let sites: Vec<&str> = unique.iter().map(|p| p.1).collect();
        let ts: Vec<i64> = unique.iter().map(|p| p.3.ts).collect();
        let devices: Vec<&str> = unique.iter().map(|p| p.2).collect();
        let boots: Vec<i64> = unique.iter().map(|p| i64::from(p.3.boot)).collect();
        let seqs: Vec<i64> = unique
            .iter()
            .map(|p| seq_i64(p.3.seq))
            .collect::<Result<_, _>>()?;
        let intervals: Vec<i64> = unique.iter().map(|p| i64::from(p.3.interval_s)).collect();
        let flags: Vec<Option<String>> = unique.iter().map(|p| flags_json(p.3)).collect();
        let received = vec![self.received; unique.len()];
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
                r.ts,
                device.to_string(),
                i64::from(r.boot),
                seq_i64(r.seq)?,
            );
            if !inserted.contains(&key) {
                self.out.duplicates += 1;
                continue;
            }
            self.out.stored += 1;
            self.out.fresh[i] = true;
            self.roll_up(site, r);
            let newest_ts = match self.newest.get(site) {
                Some((_, l)) => Some(l.ts),
                None => known.newest_ts(site),
            };
            if newest_ts.is_none_or(|t| t <= r.ts) {
                self.newest
                    .insert(site.to_string(), (device.to_string(), r.clone()));
            }
            self.seen
                .insert((site.to_string(), device.to_string()), self.received);
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
            let ts: Vec<i64> = fresh.iter().map(|p| p.3.ts).collect();
            tx.execute(
                "INSERT INTO outbox (kind, site, device, boot, seq, ts) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])",
                &[&(OutboxKind::Reading as i16), &sites, &devices, &boots, &seqs, &ts],
            )?;
        }
        Ok(())
    }

    fn roll_up(&mut self, site: &str, r: &Reading) {
        for (i, (_, width)) in ROLLUPS.iter().enumerate() {
            let aggs = self.deltas[i]
                .entry((site.to_string(), bucket(r.ts, *width)))
                .or_default();
            for (j, m) in Metric::ALL.into_iter().enumerate() {
                if let Some(v) = r.valid(m) {
                    aggs[j].add(v);
                }
            }
        }
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
        known: &mut Known,
        i: usize,
        site: &str,
        device: &str,
        event: &Event,
    ) -> Result<(), StoreError> {
        let received = self.received;
        let payload = || serde_json::to_vec(event).unwrap_or_default();
        if !known.admit(
            tx,
            received,
            site,
            device,
            "event",
            payload,
            &mut self.rejected,
        )? {
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
                &event.ts,
                &event.kind.name(),
                &received,
            ],
        )?;
        if n == 0 {
            self.out.duplicates += 1;
        } else {
            self.out.other += 1;
            self.out.fresh[i] = true;
            self.push_outbox(
                tx,
                OutboxKind::Event,
                Some((site, device, boot, seq)),
                event.ts,
            )?;
        }
        self.seen
            .insert((site.to_string(), device.to_string()), received);
        Ok(())
    }

    fn status(
        &mut self,
        tx: &mut Transaction,
        known: &mut Known,
        site: &str,
        device: &str,
        status: &Status,
    ) -> Result<(), StoreError> {
        let received = self.received;
        let payload = || serde_json::to_vec(status).unwrap_or_default();
        if !known.admit(
            tx,
            received,
            site,
            device,
            "status",
            payload,
            &mut self.rejected,
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
                    &site, &device, &received, &status.ts, &new.state, &new.fw, &boot, &interval,
                ],
            )?;
            tx.execute(
                "UPDATE devices SET state = $3, fw = $4, boot = $5, interval_s = $6 \
                 WHERE site = $1 AND device = $2",
                &[&site, &device, &new.state, &new.fw, &boot, &interval],
            )?;
            known.set_device(site.to_string(), device.to_string(), new);
        }
        self.out.other += 1;
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
            &[&level.ts, &level.level.name(), &source],
        )?;
        self.out.other += 1;
        self.out.fresh[i] = true;
        self.push_outbox(tx, OutboxKind::CityLevel, None, level.ts)
    }

    /// Merge the batch's rollups, newest readings and last-seen times into their tables.
    fn finish(&self, tx: &mut Transaction) -> Result<(), StoreError> {
        for (i, (table, _)) in ROLLUPS.iter().enumerate() {
            if self.deltas[i].is_empty() {
                continue;
            }
            let sites: Vec<&str> = self.deltas[i].keys().map(|(s, _)| s.as_str()).collect();
            let buckets: Vec<i64> = self.deltas[i].keys().map(|(_, b)| *b).collect();
            let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
            for j in 0..Metric::ALL.len() {
                let aggs = || self.deltas[i].values().map(move |a| a[j]);
                columns.push(aggs().map(|a| Some(a.n as f64)).collect());
                columns.push(aggs().map(|a| Some(a.sum)).collect());
                columns.push(aggs().map(|a| a.lo).collect());
                columns.push(aggs().map(|a| a.hi).collect());
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&sites, &buckets];
            params.extend(columns.iter().map(|v| v as &(dyn ToSql + Sync)));
            tx.execute(&schema::rollup_upsert(table), &params)?;
        }
        if !self.newest.is_empty() {
            let sites: Vec<&str> = self.newest.keys().map(String::as_str).collect();
            let devices: Vec<&str> = self.newest.values().map(|(d, _)| d.as_str()).collect();
            let ts: Vec<i64> = self.newest.values().map(|(_, r)| r.ts).collect();
            let json: Vec<String> = self
                .newest
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
                &[&sites, &devices, &ts, &json, &self.received],
            )?;
        }
        if !self.seen.is_empty() {
            let sites: Vec<&str> = self.seen.keys().map(|(s, _)| s.as_str()).collect();
            let devices: Vec<&str> = self.seen.keys().map(|(_, d)| d.as_str()).collect();
            let at: Vec<i64> = self.seen.values().copied().collect();
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
