//! Stop-work notices: one per level rise, sent to every site the level stops, and each site's
//! receipt (an inspector's confirmation, or a device's reply to the notice command).

use super::{ActingError, ActingStore, SqliteActing};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// How a receipt came in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ReceiptVia {
    /// An inspector confirmed the site has it.
    Inspector,
    /// The site's device answered the notice command.
    Device,
}

impl ReceiptVia {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NoticeReceipt {
    pub site: String,
    /// What the notice stops there: `earthwork` or `all`.
    pub work: String,
    pub via: Option<ReceiptVia>,
    pub by: Option<String>,
    pub received_ts: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notice {
    pub id: i64,
    pub level: String,
    pub issued_by: String,
    pub issued_ts: i64,
    pub note: String,
    pub receipts: Vec<NoticeReceipt>,
}

/// The rows of notices and their receipts.
pub trait NoticeDb: Send + Sync {
    /// Store a notice and one pending receipt per (site, work stopped); its id.
    fn insert_notice(
        &self,
        level: &str,
        by: &str,
        ts: i64,
        note: &str,
        sites: &[(String, &'static str)],
    ) -> Result<i64, ActingError>;
    /// Fill a receipt unless it was filled before; false when the notice did not go to the site.
    fn set_receipt(
        &self,
        notice_id: i64,
        site: &str,
        via: ReceiptVia,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError>;
    fn notice(&self, id: i64) -> Result<Option<Notice>, ActingError>;
    /// Notices issued in [from, to), oldest first.
    fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError>;
    /// The newest `n` notices, oldest first.
    fn newest_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError>;
}

impl ReceiptVia {
    pub(crate) fn parse(s: &str) -> ReceiptVia {
        s.parse().unwrap_or(ReceiptVia::Inspector)
    }
}

impl ActingStore {
    /// Record a notice and one pending receipt per affected site: (site, work stopped).
    pub fn issue_notice(
        &self,
        level: &str,
        by: &str,
        ts: i64,
        note: &str,
        sites: &[(String, &'static str)],
    ) -> Result<Notice, ActingError> {
        let id = self.db.insert_notice(level, by, ts, note, sites)?;
        self.notice(id)
    }

    /// A site has the notice. The first receipt counts; later ones change nothing.
    pub fn confirm_receipt(
        &self,
        notice_id: i64,
        site: &str,
        via: ReceiptVia,
        by: &str,
        ts: i64,
    ) -> Result<Notice, ActingError> {
        if !self.db.set_receipt(notice_id, site, via, by, ts)? {
            return Err(ActingError::NotFound(format!(
                "notice {notice_id} for site {site}"
            )));
        }
        self.notice(notice_id)
    }

    /// A device answered the notice command sent to its site: the receipt, by the device.
    /// For the command path (its reply handler calls this with the device id).
    pub fn device_receipt(
        &self,
        notice_id: i64,
        site: &str,
        device: &str,
        ts: i64,
    ) -> Result<Notice, ActingError> {
        self.confirm_receipt(notice_id, site, ReceiptVia::Device, device, ts)
    }

    pub fn notice(&self, id: i64) -> Result<Notice, ActingError> {
        self.db
            .notice(id)?
            .ok_or_else(|| ActingError::NotFound(format!("notice {id}")))
    }

    /// Notices issued in [from, to), oldest first.
    pub fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError> {
        self.db.notices_between(from, to)
    }

    /// The newest notices, newest first.
    pub fn recent_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError> {
        let mut v = self.db.newest_notices(n)?;
        v.reverse();
        Ok(v)
    }
}

impl NoticeDb for SqliteActing {
    fn insert_notice(
        &self,
        level: &str,
        by: &str,
        ts: i64,
        note: &str,
        sites: &[(String, &'static str)],
    ) -> Result<i64, ActingError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO notices (level, issued_by, issued_ts, note) VALUES (?1, ?2, ?3, ?4)",
            params![level, by, ts, note],
        )?;
        let id = tx.last_insert_rowid();
        for (site, work) in sites {
            tx.execute(
                "INSERT INTO notice_receipts (notice_id, site, work) VALUES (?1, ?2, ?3)",
                params![id, site, work],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn set_receipt(
        &self,
        notice_id: i64,
        site: &str,
        via: ReceiptVia,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError> {
        let n = self.conn().execute(
            "UPDATE notice_receipts SET via = coalesce(via, ?3), by_user = coalesce(by_user, ?4), \
             received_ts = coalesce(received_ts, ?5) WHERE notice_id = ?1 AND site = ?2",
            params![notice_id, site, via.name(), by, ts],
        )?;
        Ok(n > 0)
    }

    fn notice(&self, id: i64) -> Result<Option<Notice>, ActingError> {
        Ok(self.notices_where("id = ?1", params![id])?.pop())
    }

    fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError> {
        self.notices_where("issued_ts >= ?1 AND issued_ts < ?2", params![from, to])
    }

    fn newest_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError> {
        self.notices_where(
            "id IN (SELECT id FROM notices ORDER BY id DESC LIMIT ?1)",
            params![n],
        )
    }
}

impl SqliteActing {
    fn notices_where(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Notice>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT id, level, issued_by, issued_ts, note FROM notices WHERE {clause} \
             ORDER BY id LIMIT 1000"
        ))?;
        let mut notices = st
            .query_map(args, |r| {
                Ok(Notice {
                    id: r.get(0)?,
                    level: r.get(1)?,
                    issued_by: r.get(2)?,
                    issued_ts: r.get(3)?,
                    note: r.get(4)?,
                    receipts: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = conn.prepare_cached(
            "SELECT site, work, via, by_user, received_ts FROM notice_receipts \
             WHERE notice_id = ?1 ORDER BY site",
        )?;
        for n in &mut notices {
            n.receipts = st
                .query_map([n.id], |r| {
                    let via: Option<String> = r.get(2)?;
                    Ok(NoticeReceipt {
                        site: r.get(0)?,
                        work: r.get(1)?,
                        via: via.as_deref().map(ReceiptVia::parse),
                        by: r.get(3)?,
                        received_ts: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
        }
        Ok(notices)
    }
}
