//! The PostgreSQL side of the writer's registry (`store/registry.rs`): reading it back, and
//! writing what it decides (new sites and devices, dead letters) inside the batch's
//! transaction. Other instances may register sites and devices too: every insert here is
//! `ON CONFLICT DO NOTHING`, so a stale memory costs a no-op, never an error.

use crate::store::batch::BatchTally;
use crate::store::registry::{source_of, DeviceState, MakeRoom, Registry};
use crate::store::StoreError;
use dustwatch_protocol::RejectReason;
use postgres::{GenericClient, Transaction};

/// Forget everything and read it back (after a rolled-back batch or a retention pass).
pub(super) fn reload(known: &mut Registry, c: &mut impl GenericClient) -> Result<(), StoreError> {
    known.clear();
    load(known, c)
}

pub(super) fn load(known: &mut Registry, c: &mut impl GenericClient) -> Result<(), StoreError> {
    for row in c.query("SELECT id, registered FROM sites", &[])? {
        known.load_site(row.get(0), row.get(1));
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
        known.set_device(row.get::<_, &str>(0), row.get::<_, &str>(1), state);
    }
    for row in c.query(
        "SELECT source, count(*) FROM dead_letters GROUP BY source",
        &[],
    )? {
        known.dead.load(row.get(0), row.get(1));
    }
    known.latest.extend(super::reader::read_latest(c)?);
    Ok(())
}

/// Register the record's site and device, or keep the record as a dead letter when they are
/// refused (`payload` rebuilds its raw form; `kind` names the record in the dead letter's
/// topic). Returns false when refused.
pub(super) fn admit(
    known: &mut Registry,
    tx: &mut Transaction,
    tally: &mut BatchTally<'_>,
    (site, device, kind): (&str, &str, &str),
    payload: impl FnOnce() -> Vec<u8>,
) -> Result<bool, StoreError> {
    let admission = known.admit(site, device);
    if admission.new_site {
        tx.execute(
            "INSERT INTO sites (id, name, street, kind, phase, registered) \
             VALUES ($1, $1, '', 'construction', 'idle', false) ON CONFLICT DO NOTHING",
            &[&site],
        )?;
    }
    if admission.new_device {
        tx.execute(
            "INSERT INTO devices (site, device) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&site, &device],
        )?;
    }
    let Some((reason, detail)) = admission.refused else {
        return Ok(true);
    };
    let topic = format!("{site}/{device}/{kind}");
    dead_letter(known, tx, tally, &topic, &payload(), reason, &detail)?;
    Ok(false)
}

/// Keep one rejected message, making room first as the registry's counts decide, and count it
/// in the batch's outcome.
pub(super) fn dead_letter(
    known: &mut Registry,
    tx: &mut Transaction,
    tally: &mut BatchTally<'_>,
    topic: &str,
    payload: &[u8],
    reason: RejectReason,
    detail: &str,
) -> Result<(), StoreError> {
    let source = source_of(topic);
    match known.dead.make_room(source, known.limits.dead_letters) {
        MakeRoom::Nothing => {}
        MakeRoom::OldestOfSource => {
            let n = tx.execute(
                "DELETE FROM dead_letters WHERE id = \
                 (SELECT min(id) FROM dead_letters WHERE source = $1)",
                &[&source],
            )?;
            known.dead.forget(source, n);
        }
        MakeRoom::OldestOfAll => {
            let gone = tx.query_opt(
                "DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters) \
                 RETURNING source",
                &[],
            )?;
            if let Some(row) = gone {
                known.dead.forget(&row.get::<_, String>(0), 1);
            }
        }
    }
    tx.execute(
        "INSERT INTO dead_letters (received_ms, topic, reason, detail, payload, source) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &tally.received,
            &topic,
            &reason.label(),
            &detail,
            &payload,
            &source,
        ],
    )?;
    known.dead.kept(source);
    tally.refused(reason);
    Ok(())
}
