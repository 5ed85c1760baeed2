//! `dustwatch-bench store`: the store writer alone (no broker), SQLite against PostgreSQL in one
//! run: readings a second through `write_batch` in batches the ingest writer would form, and the
//! ratio of the two. PostgreSQL is testkit's throwaway server on loopback (skipped when not
//! installed), which runs with fsync off while SQLite keeps its default `synchronous = normal`:
//! read PostgreSQL's figure as an upper bound.

use dustwatch::store::config::Backend;
use dustwatch::store::{self, Record, StoreConfig};
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::{EventTime, Reading};
use dustwatch_testkit::Postgres;
use std::path::Path;
use std::time::Instant;

const SITES: u64 = 200;
const BATCH: usize = 500;
const READINGS: u64 = 100_000;

fn readings() -> Vec<Record> {
    let t0 = 1_483_228_800_000i64;
    (0..READINGS)
        .map(|k| Record::Reading {
            site: format!("s{}", k % SITES),
            device: "d1".into(),
            reading: Reading {
                ts: EventTime(t0) + (k / SITES) as i64 * MINUTE,
                seq: k,
                boot: 1,
                interval_s: 60,
                pm25: Some((k % 300) as f64),
                pm10: Some((k % 500) as f64),
                noise_dba: Some(55.0),
                ..Default::default()
            },
        })
        .collect()
}

/// Readings a second written through `config`'s store.
fn rate(config: &StoreConfig, records: &[Record]) -> anyhow::Result<f64> {
    let mut st = store::open(config, false, false, false)?;
    let start = Instant::now();
    for batch in records.chunks(BATCH) {
        st.writer.write_batch(batch)?;
    }
    Ok(records.len() as f64 / start.elapsed().as_secs_f64())
}

/// Run both and return the Markdown table.
pub fn run(work: &Path) -> anyhow::Result<String> {
    let records = readings();
    let sqlite = StoreConfig {
        data_dir: work.join("store-sqlite"),
        ..Default::default()
    };
    let sqlite_rate = rate(&sqlite, &records)?;
    let mut out = format!(
        "| store | readings/s ({READINGS} in batches of {BATCH}, {SITES} sites) | ratio to SQLite |\n\
         |---|---|---|\n| SQLite | {sqlite_rate:.0} | 1.00 |\n"
    );
    match Postgres::start_installed() {
        Some(pg) => {
            let mut config = StoreConfig {
                backend: Backend::Postgres,
                data_dir: work.join("store-pg"),
                ..Default::default()
            };
            config.postgres.url = pg.database();
            let pg_rate = std::thread::spawn(move || rate(&config, &records))
                .join()
                .map_err(|_| anyhow::anyhow!("PostgreSQL writer panicked"))??;
            out.push_str(&format!(
                "| PostgreSQL (local, fsync off) | {pg_rate:.0} | {:.2} |\n",
                pg_rate / sqlite_rate
            ));
        }
        None => out.push_str("| PostgreSQL | not installed | |\n"),
    }
    Ok(out)
}
