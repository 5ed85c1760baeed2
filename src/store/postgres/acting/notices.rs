//! Stop-work notices and their receipts in PostgreSQL.

use super::PgActing;
use crate::store::acting::{ActingError, Notice, NoticeDb, NoticeReceipt, ReceiptVia};
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
                .query_one(
                    "INSERT INTO notices (level, issued_by, issued_ts, note) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&level, &by, &ts, &note],
                )?
                .get(0);
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
                "UPDATE notice_receipts SET via = coalesce(via, $3), \
                 by_user = coalesce(by_user, $4), received_ts = coalesce(received_ts, $5) \
                 WHERE notice_id = $1 AND site = $2",
                &[&notice_id, &site, &via.name(), &by, &ts],
            )?;
            Ok(n > 0)
        })
    }

    fn notice(&self, id: i64) -> Result<Option<Notice>, ActingError> {
        self.with(move |c| Ok(notices_where(c, "id = $1", &[&id])?.pop()))
    }

    fn notices_between(&self, from: i64, to: i64) -> Result<Vec<Notice>, ActingError> {
        self.with(move |c| notices_where(c, "issued_ts >= $1 AND issued_ts < $2", &[&from, &to]))
    }

    fn newest_notices(&self, n: u32) -> Result<Vec<Notice>, ActingError> {
        let n = i64::from(n);
        self.with(move |c| {
            notices_where(
                c,
                "id IN (SELECT id FROM notices ORDER BY id DESC LIMIT $1)",
                &[&n],
            )
        })
    }
}

fn notices_where(
    c: &mut Client,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Notice>, StoreError> {
    let mut notices: Vec<Notice> = c
        .query(
            &format!(
                "SELECT id, level, issued_by, issued_ts, note FROM notices WHERE {clause} \
                 ORDER BY id LIMIT 1000"
            ),
            args,
        )?
        .iter()
        .map(|r| Notice {
            id: r.get(0),
            level: r.get(1),
            issued_by: r.get(2),
            issued_ts: r.get(3),
            note: r.get(4),
            receipts: Vec::new(),
        })
        .collect();
    let receipts = c.prepare(
        "SELECT site, work, via, by_user, received_ts FROM notice_receipts \
         WHERE notice_id = $1 ORDER BY site COLLATE \"C\"",
    )?;
    for n in &mut notices {
        n.receipts = c
            .query(&receipts, &[&n.id])?
            .iter()
            .map(|r| NoticeReceipt {
                site: r.get(0),
                work: r.get(1),
                via: r.get::<_, Option<&str>>(2).map(ReceiptVia::parse),
                by: r.get(3),
                received_ts: r.get(4),
            })
            .collect();
    }
    Ok(notices)
}
