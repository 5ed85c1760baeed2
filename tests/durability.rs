//! A `kill -9` of the aggregator at any moment loses no acknowledged reading, and after restart
//! nothing is stored twice. Real binary, real Mosquitto, real SQLite.

mod support;

use rusqlite::Connection;
use support::*;

const DEVICES: usize = 40;
const PER_DEVICE: u64 = 1000;
const KILLS: usize = 4;

fn stored(data: &std::path::Path) -> Option<(u64, u64, u64)> {
    let conn = Connection::open(data.join("dustwatch.db")).ok()?;
    conn.query_row(
        "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT device, boot, seq FROM readings)), \
         (SELECT count(*) FROM dead_letters) FROM readings",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
    )
    .ok()
}

#[test]
fn kill_during_ingest_loses_nothing() {
    let Some(mosquitto) = Mosquitto::start() else {
        return;
    };
    let port = mosquitto.port();
    let data = tempfile::tempdir().expect("temp data dir");
    let expected = DEVICES as u64 * PER_DEVICE;

    // The first start creates the persistent session before anything is published.
    let mut agg = AggregatorProcess::serve(port, data.path());
    let publisher = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(publish_all(
            port,
            "durability-publisher",
            fleet_payloads("site-a", DEVICES, PER_DEVICE),
        ));
    });

    let mut killed_mid_stream = 0;
    for _ in 0..KILLS {
        // Let this process commit some readings, then kill it without warning.
        let before = stored(data.path()).map_or(0, |s| s.0);
        eventually(120, "progress before the kill", || {
            let now = stored(data.path()).map_or(0, |s| s.0);
            (now >= before + 1000 || now >= expected).then_some(())
        });
        if stored(data.path()).is_some_and(|s| s.0 < expected) {
            killed_mid_stream += 1;
        }
        agg.kill9();
        agg = AggregatorProcess::serve(port, data.path());
    }
    publisher
        .join()
        .expect("publisher finished: every reading acknowledged by Mosquitto");

    let (rows, distinct, dead) = eventually(180, "every reading stored", || {
        stored(data.path()).filter(|s| s.0 >= expected)
    });
    // Give redeliveries in flight a moment to show up as (wrong) extra rows if dedup failed.
    let m = agg.metrics();
    agg.kill9();
    let (rows_after, _, _) = stored(data.path()).expect("store readable");
    assert_eq!(rows, expected, "every acknowledged reading stored");
    assert_eq!(rows_after, expected, "nothing stored twice");
    assert_eq!(distinct, expected, "each (device, boot, seq) exactly once");
    assert_eq!(dead, 0, "no dead letters: {m}");
    assert!(
        killed_mid_stream >= 1,
        "at least one kill must land while readings were still arriving"
    );
}
