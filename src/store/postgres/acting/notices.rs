//! Stop-work notices and their receipts in PostgreSQL.

use super::PgActing;
use crate::store::acting::statements as sql;
use crate::store::acting::{ActingError, Notice, NoticeDb, ReceiptVia};
use crate::store::StoreError;
use postgres::types::ToSql;
use postgres::Client;

impl NoticeDb for PgActing {
    fn insert_notice(
        &self,
        level: &str,
        by: &str,
        ts: i64,
        note: &str,
        sites: &[(String, &'static str)],
    ) -> Result<i64, ActingError> {
        let (level, by, note) = (level.to_string(), by.to_string(), note.to_string());
        let (names, works): (Vec<String>, Vec<String>) = sites
            .iter()
            .map(|(s, w)| (s.clone(), w.to_string()))
            .unzip();
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let id: i64 = tx
                .query_one(sql::INSERT_NOTICE, &[&level, &by, &ts, &note])?
                .try_get(0)?;
            tx.execute(
                "INSERT INTO notice_receipts (notice_id, site, work) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[])",
                &[&id, &names, &works],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn set_receipt(
        &self,
        notice_id: i64,
        site: &str,
        via: ReceiptVia,
        by: &str,
        ts: i64,
    ) -> Result<bool, ActingError> {
        let (site, by) = (site.to_string(), by.to_string());
        self.with(move |c| {
            let n = c.execute(
                sql::SET_RECEIPT,
                &[&notice_id, &site, &via.name(), &by, &ts],
            )?;
            Ok(n > 0)
        })
    }

    fn notice(&self, id: i64) -> Result<Option<Notice>, ActingError> {
        self.with(move |c| Ok(notices_where(c, sql::NOTICE_BY_ID, &[&id])?.pop()))
    }

    fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError> {
        self.with(move |c| notices_where(c, sql::NOTICES_BETWEEN, &[&from, &to]))
    }

    fn newest_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError> {
        let n = i64::from(n);
        self.with(move |c| notices_where(c, sql::NEWEST_NOTICES, &[&n]))
    }
}

fn notices_where(
    c: &mut Client,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Notice>, StoreError> {
    let mut notices = c
        .query(&sql::notices_where(clause), args)?
        .iter()
        .map(sql::notice_of)
        .collect::<Result<Vec<_>, _>>()?;
    // Byte-wise, as SQLite orders them, whatever the database's locale.
    let receipts = c.prepare(&format!(
        "{} ORDER BY site COLLATE \"C\"",
        sql::RECEIPTS_OF_NOTICE
    ))?;
    for n in &mut notices {
        n.receipts = c
            .query(&receipts, &[&n.id])?
            .iter()
            .map(sql::receipt_of)
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(notices)
}
