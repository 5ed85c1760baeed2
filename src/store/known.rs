//! The SQLite side of the writer's registry (`registry.rs`): reading it back from the database,
//! and writing what it decides (new sites and devices, dead letters) inside the batch's
//! transaction.

use super::batch::BatchTally;
use super::dead_letters;
use super::reader::read_latest;
pub(super) use super::registry::Registry as Known;
use super::registry::{DeviceState, Limits};
use super::StoreError;
use dustwatch_protocol::RejectReason;
use rusqlite::{params, Connection, Transaction};

impl Known {
    /// A registry read from the database.
    pub(super) fn open(
        conn: &Connection,
        strict: bool,
        limits: Limits,
    ) -> Result<Known, StoreError> {
        let mut known = Known::new(strict, limits);
        known.load(conn)?;
        Ok(known)
    }

    /// Forget everything and read it back (after a rolled-back batch or a retention pass).
    pub(super) fn reload(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.clear();
        self.load(conn)
    }

    fn load(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let mut stmt = conn.prepare("SELECT id, registered FROM sites")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        for row in rows {
            let (id, registered) = row?;
            self.load_site(id, registered);
        }
        dead_letters::load(conn, &mut self.dead)?;
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
            self.set_device(&site, &device, v);
        }
        drop(stmt);
        self.latest.extend(read_latest(conn)?);
        Ok(())
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
        dead_letters::insert(
            tx,
            &mut self.dead,
            caps,
            received,
            topic,
            payload,
            reason,
            detail,
        )
    }
}

/// Register the site and device of a record, or keep the record as a dead letter when they are
/// refused (`payload` rebuilds its raw form; `kind` names the record in the dead letter's
/// topic). Returns false when refused.
pub(super) fn admit(
    known: &mut Known,
    tx: &Transaction,
    tally: &mut BatchTally<'_>,
    (site, device, kind): (&str, &str, &str),
    payload: impl FnOnce() -> Vec<u8>,
) -> Result<bool, StoreError> {
    let admission = known.admit(site, device);
    if admission.new_site {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO sites (id, name, street, kind, phase, registered) \
             VALUES (?1, ?1, '', 'construction', 'idle', 0)",
        )?
        .execute(params![site])?;
    }
    if admission.new_device {
        tx.prepare_cached("INSERT OR IGNORE INTO devices (site, device) VALUES (?1, ?2)")?
            .execute(params![site, device])?;
    }
    let Some((reason, detail)) = admission.refused else {
        return Ok(true);
    };
    let topic = format!("{site}/{device}/{kind}");
    known.dead_letter(tx, tally.received, &topic, &payload(), reason, &detail)?;
    tally.refused(reason);
    Ok(false)
}
