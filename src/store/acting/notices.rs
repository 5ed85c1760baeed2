//! Stop-work notices: one per level rise, sent to every site the level stops, and each site's
//! receipt (an inspector's confirmation, or a device's reply to the notice command).

use super::statements as sql;
use super::{ActingError, ActingStore, SqliteActing};
use crate::store::sql::sqlite;
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
        let id: i64 = tx.query_row(
            &sqlite(sql::INSERT_NOTICE),
            params![level, by, ts, note],
            |r| r.get(0),
        )?;
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
            &sqlite(sql::SET_RECEIPT),
            params![notice_id, site, via.name(), by, ts],
        )?;
        Ok(n > 0)
    }

    fn notice(&self, id: i64) -> Result<Option<Notice>, ActingError> {
        Ok(self.notices_where(sql::NOTICE_BY_ID, params![id])?.pop())
    }

    fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError> {
        self.notices_where(sql::NOTICES_BETWEEN, params![from, to])
    }

    fn newest_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError> {
        self.notices_where(sql::NEWEST_NOTICES, params![n])
    }
}

impl SqliteActing {
    fn notices_where(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Notice>, ActingError> {
        let conn = self.conn();
        let mut st = conn.prepare(&sqlite(&sql::notices_where(clause)))?;
        let mut notices = st
            .query_map(args, |r| sql::notice_of(r))?
            .collect::<Result<Vec<_>, _>>()?;
        // SQLite's default collation is byte-wise already.
        let mut st = conn.prepare_cached(&sqlite(&format!(
            "{} ORDER BY site",
            sql::RECEIPTS_OF_NOTICE
        )))?;
        for n in &mut notices {
            n.receipts = st
                .query_map([n.id], |r| sql::receipt_of(r))?
                .collect::<Result<Vec<_>, _>>()?;
        }
        Ok(notices)
    }
}
