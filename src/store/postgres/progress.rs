//! The rules engine's per-site progress in PostgreSQL (see `store::progress`), and the alert
//! ids several instances draw from one sequence.

use super::config::connect;
use crate::rules::alert_ids::AlertIds;
use crate::store::StoreError;
use postgres::{Client, GenericClient};
use std::collections::HashMap;

/// Ids handed out per round trip to the sequence (`alert_id_blocks` steps by this).
pub const ID_BLOCK: i64 = 64;

pub fn save(client: &mut impl GenericClient, progress: &[(String, i64)]) -> Result<(), StoreError> {
    let (sites, to): (Vec<&str>, Vec<i64>) = progress.iter().map(|(s, t)| (s.as_str(), *t)).unzip();
    client.execute(
        "INSERT INTO rule_progress (site, judged_to) SELECT * FROM unnest($1::text[], $2::int8[]) \
         ON CONFLICT (site) DO UPDATE SET \
         judged_to = greatest(rule_progress.judged_to, excluded.judged_to)",
        &[&sites, &to],
    )?;
    Ok(())
}

pub fn load(client: &mut Client) -> Result<HashMap<String, i64>, StoreError> {
    Ok(client
        .query("SELECT site, judged_to FROM rule_progress", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Alert ids from the database's sequence, a block at a time, on a connection of their own.
pub struct PgAlertIds {
    url: String,
    client: Option<Client>,
    block: std::ops::Range<i64>,
}

impl PgAlertIds {
    pub fn open(url: &str) -> Result<PgAlertIds, StoreError> {
        Ok(PgAlertIds {
            url: url.to_string(),
            client: Some(connect(url)?),
            block: 0..0,
        })
    }

    fn refill(&mut self) -> Result<(), StoreError> {
        let client = match &mut self.client {
            Some(c) if !c.is_closed() => c,
            _ => self.client.insert(connect(&self.url)?),
        };
        let start: i64 = client
            .query_one("SELECT nextval('alert_id_blocks')", &[])?
            .get(0);
        self.block = start..start + ID_BLOCK;
        Ok(())
    }
}

impl AlertIds for PgAlertIds {
    fn next_id(&mut self) -> Option<i64> {
        if self.block.is_empty() {
            if let Err(e) = self.refill() {
                // The alert's own write fails the same way; its id is counted on locally.
                tracing::error!(error = %e, "no alert id from PostgreSQL");
                return None;
            }
        }
        self.block.next()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sequence_steps_by_one_block() {
        assert!(super::super::schema::alert_id_sequence_ddl()
            .contains(&format!("INCREMENT BY {}", super::ID_BLOCK)));
    }
}
