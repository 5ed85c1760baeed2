//! The SQLite store on real files: deduplication across a restart, the schema migration, and
//! checkpoints running beside the writer.

use super::sqlite::{db_path, StoreConfig};
use super::{Record, SqliteStore, StoreReader, StoreWriter};
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{EventTime, Reading};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn reading(device: usize, seq: u64) -> Record {
    Record::Reading {
        site: format!("s{}", device % 5),
        device: format!("d{device}"),
        reading: Reading {
            ts: EventTime(1_483_228_800_000) + seq as i64 * MINUTE,
            seq,
            boot: 1,
            interval_s: 60,
            pm10: Some(80.0 + device as f64),
            ..Default::default()
        },
    }
}

#[test]
fn a_redelivery_after_a_restart_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch: Vec<Record> = (0..20).map(|d| reading(d, 1)).collect();
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    let first = store.write_batch(&batch).expect("write");
    assert_eq!((first.stored, first.duplicates), (20, 0));
    drop(store);

    let mut store = SqliteStore::open(config(dir.path()), false).expect("reopen");
    let again = store.write_batch(&batch).expect("write");
    assert_eq!((again.stored, again.duplicates), (0, 20));
    assert!(
        again.fresh.iter().all(|f| !f),
        "nothing fresh goes to the rules"
    );
    let next = store.write_batch(&[reading(0, 2)]).expect("write");
    assert_eq!(next.stored, 1, "the next seq of the same device is new");
    let counts = store.reader().expect("reader").counts().expect("counts");
    assert_eq!(counts.readings, 21);
}

#[test]
fn schema_1_dedup_index_is_dropped_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(config(dir.path()), false).expect("open"));
    let conn = rusqlite::Connection::open(db_path(dir.path())).expect("sqlite");
    conn.execute_batch(
        "CREATE UNIQUE INDEX readings_dedup ON readings (site, device, boot, seq);
         PRAGMA user_version = 1;",
    )
    .expect("schema 1");
    drop(conn);

    let mut store = SqliteStore::open(config(dir.path()), false).expect("reopen");
    store.write_batch(&[reading(1, 1)]).expect("write");
    drop(store);
    let conn = rusqlite::Connection::open(db_path(dir.path())).expect("sqlite");
    let (indexes, version): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'readings_dedup'), \
             (SELECT user_version FROM pragma_user_version)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("query");
    assert_eq!((indexes, version), (0, super::schema::VERSION));
}

#[test]
fn commits_are_copied_back_into_the_database_file_while_the_writer_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    let db = db_path(dir.path());
    let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let empty = size();
    for seq in 0..20 {
        let batch: Vec<Record> = (0..200).map(|d| reading(d, seq)).collect();
        store.write_batch(&batch).expect("write");
    }
    // The writer connection never checkpoints (`wal_autocheckpoint = 0`): only the checkpoint
    // thread can grow the database file while the store is open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while size() <= empty {
        assert!(
            Instant::now() < deadline,
            "no checkpoint within 30 s: the database file stayed at {empty} bytes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let counts = store.reader().expect("reader").counts().expect("counts");
    assert_eq!(counts.readings, 4000);
}

#[test]
fn a_fenced_batch_from_an_older_lease_writes_nothing() {
    use super::{Fence, StoreError};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    let old = Fence {
        partition: 3,
        revision: 7,
    };
    let new = Fence {
        partition: 3,
        revision: 9,
    };
    let first = store
        .write_batch_fenced(&[reading(0, 1)], old)
        .expect("the first owner writes");
    assert_eq!(first.stored, 1);
    store
        .write_batch_fenced(&[reading(0, 2)], new)
        .expect("the new owner writes");
    // The old owner wakes up and tries again: refused, nothing of its batch stored.
    let err = store
        .write_batch_fenced(&[reading(1, 3), reading(2, 3)], old)
        .expect_err("the old owner is fenced");
    assert!(
        matches!(
            err,
            StoreError::Fenced {
                partition: 3,
                revision: 7,
                current: 9
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient(), "retrying a fenced batch cannot help");
    // Other partitions are not affected, and the current owner goes on.
    store
        .write_batch_fenced(
            &[reading(3, 4)],
            Fence {
                partition: 4,
                revision: 1,
            },
        )
        .expect("another partition");
    store
        .write_batch_fenced(&[reading(4, 5)], new)
        .expect("the same revision again");
    let counts = store.reader().expect("reader").counts().expect("counts");
    assert_eq!(counts.readings, 4, "the fenced batch left no reading");
    drop(store);
    // The stored revision survives a restart.
    let mut store = SqliteStore::open(config(dir.path()), false).expect("reopen");
    assert!(matches!(
        store.write_batch_fenced(&[reading(1, 6)], old),
        Err(StoreError::Fenced { .. })
    ));
}

#[test]
fn schema_6_adds_the_gas_columns_to_a_store_of_schema_4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(config(dir.path()), false).expect("open");
    store.write_batch(&[reading(1, 1)]).expect("write");
    drop(store);
    // Take the store back to schema 4: no gas columns anywhere.
    let conn = rusqlite::Connection::open(db_path(dir.path())).expect("sqlite");
    let mut sql = String::new();
    for gas in dustwatch_protocol::Metric::GASES {
        sql.push_str(&format!("ALTER TABLE readings DROP COLUMN {gas};"));
        for (table, _) in super::schema::ROLLUPS {
            for col in super::schema::rollup_cols(gas) {
                sql.push_str(&format!("ALTER TABLE {table} DROP COLUMN {col};"));
            }
        }
    }
    sql.push_str("PRAGMA user_version = 4;");
    conn.execute_batch(&sql).expect("schema 4");
    drop(conn);

    let mut store = SqliteStore::open(config(dir.path()), false).expect("migrated");
    let mut station = reading(1, 2);
    if let Record::Reading { reading, .. } = &mut station {
        reading.no2 = Some(41.0);
        reading.co = Some(0.8);
    }
    store.write_batch(&[station]).expect("a reading with gases");
    let reader = store.reader().expect("reader");
    let got = reader.readings("s1", 0, i64::MAX).expect("readings");
    assert_eq!(got.len(), 2, "the old reading is kept");
    assert_eq!((got[0].1.no2, got[1].1.no2), (None, Some(41.0)));
    assert_eq!(got[1].1.co, Some(0.8));
    let series = reader
        .series("s1", dustwatch_protocol::Metric::No2, 0, i64::MAX / 2, 3600)
        .expect("series");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].mean, 41.0);
    drop(store);
    let conn = rusqlite::Connection::open(db_path(dir.path())).expect("sqlite");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::schema::VERSION);
}
