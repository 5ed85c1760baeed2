//! Stop-work commands on behalf of an order or a notice: sent to every device of a site with the
//! order's or notice's reference, found again by it, and (for notices) the devices' answers
//! turned into the notice's receipts.

use super::{CommandError, Commands};
use crate::store::acting::{ActingError, ActingStore};
use crate::store::commands::CommandRow;
use dustwatch_protocol::Command;
use std::fmt;
use std::sync::{Arc, Mutex};

/// What a stop-work command was sent for; `order-12` / `notice-3` on the wire (`ref`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRef {
    Order(i64),
    Notice(i64),
}

impl fmt::Display for StopRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopRef::Order(id) => write!(f, "order-{id}"),
            StopRef::Notice(id) => write!(f, "notice-{id}"),
        }
    }
}

impl StopRef {
    pub fn parse(s: &str) -> Option<StopRef> {
        if let Some(id) = s.strip_prefix("order-") {
            return id.parse().ok().map(StopRef::Order);
        }
        s.strip_prefix("notice-")?.parse().ok().map(StopRef::Notice)
    }
}

/// Who sends, and when on the office's clock.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub by: &'a str,
    pub office_ts: i64,
}

impl Commands {
    /// Tell every device of `site` to stop work for `reference` (for `duration_s`, or until
    /// resumed). Blocking. A device whose command could not be stored is skipped and logged:
    /// the order or notice stands either way, and the missing answer shows.
    pub fn stop_work(
        &self,
        site: &str,
        devices: &[String],
        reference: StopRef,
        duration_s: Option<u32>,
        from: Sender<'_>,
    ) -> Vec<CommandRow> {
        let command = Command::StopWork {
            duration_s,
            reference: Some(reference.to_string()),
        };
        self.to_all(site, devices, &command, from)
    }

    /// Work may go on at `site` (the order's re-inspection passed). Blocking.
    pub fn resume_work(
        &self,
        site: &str,
        devices: &[String],
        reference: StopRef,
        from: Sender<'_>,
    ) -> Vec<CommandRow> {
        let command = Command::ResumeWork {
            reference: Some(reference.to_string()),
        };
        self.to_all(site, devices, &command, from)
    }

    fn to_all(
        &self,
        site: &str,
        devices: &[String],
        command: &Command,
        from: Sender<'_>,
    ) -> Vec<CommandRow> {
        devices
            .iter()
            .filter_map(
                |d| match self.send(site, d, command.clone(), from.by, from.office_ts) {
                    Ok(row) => Some(row),
                    Err(e) => {
                        tracing::warn!(site, device = %d, error = %e, "stop-work command not sent");
                        None
                    }
                },
            )
            .collect()
    }

    /// The commands sent for `reference`, oldest first. Blocking.
    pub fn of_ref(&self, reference: StopRef) -> Result<Vec<CommandRow>, CommandError> {
        Ok(self.lock().with_ref(&reference.to_string())?)
    }

    /// From now on, a device's `ok` answer to a notice's command is that site's receipt,
    /// stamped with `clock` (the office's clock).
    pub fn record_notice_receipts(
        &self,
        acting: Arc<ActingStore>,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) {
        let sink = Receipts {
            acting,
            clock,
            since: Mutex::new(0),
        };
        if self.receipts.set(sink).is_err() {
            tracing::warn!("notice receipts were already wired");
        }
    }

    /// Turn the answers that came in since the last call into receipts. Blocking; called by
    /// the sweeper every second.
    pub(super) fn pass_on_receipts(&self) -> Result<usize, CommandError> {
        let Some(sink) = self.receipts.get() else {
            return Ok(0);
        };
        let mut since = sink.since.lock().unwrap_or_else(|p| p.into_inner());
        // Answers are stamped when ingest received them but committed a moment later: look
        // back a little (receipts are idempotent; the first one counts).
        let rows = self
            .lock()
            .answered_with_ref("notice-", *since - LOOK_BACK_MS)?;
        let mut n = 0;
        for row in rows {
            let Some(StopRef::Notice(id)) = row.command["ref"].as_str().and_then(StopRef::parse)
            else {
                continue;
            };
            *since = (*since).max(row.answered_ms.unwrap_or(0));
            match sink
                .acting
                .device_receipt(id, &row.site, &row.device, (sink.clock)())
            {
                Ok(_) => n += 1,
                // The notice does not stop that site (an answer to a hand-sent command).
                Err(ActingError::NotFound(what)) => {
                    tracing::debug!(%what, "a notice answer with no receipt to record")
                }
                Err(e) => tracing::warn!(error = %e, notice = id, "notice receipt not recorded"),
            }
        }
        Ok(n)
    }
}

/// How far back each pass looks for answers it may have missed.
const LOOK_BACK_MS: i64 = 10_000;

/// Where notice answers become receipts.
pub(super) struct Receipts {
    acting: Arc<ActingStore>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The newest answer passed on so far (ingest's receive time, Unix ms).
    since: Mutex<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_back_as_written() {
        for r in [StopRef::Order(12), StopRef::Notice(3)] {
            assert_eq!(StopRef::parse(&r.to_string()), Some(r));
        }
        assert_eq!(StopRef::parse("order-x"), None);
        assert_eq!(StopRef::parse("patrol-1"), None);
    }
}
