//! `dustwatch serve` on the PostgreSQL store: readings over MQTT (embedded broker) are stored in
//! a real PostgreSQL server and come back through the HTTP API, also from a second process with
//! an empty data directory (so nothing came from a local file). Runs when
//! `DUSTWATCH_REQUIRE_POSTGRES` is set.

mod support;

use dustwatch_protocol::TopicRoot;
use dustwatch_testkit::Postgres;
use support::{embedded_broker, eventually, http_get, publish_all, reading, AggregatorProcess};

const T0: i64 = 1_483_228_800_000;

/// Each instance has its own MQTT client id: the broker would otherwise take turns dropping
/// them.
fn config(url: &str, client_id: &str) -> String {
    format!(
        "[mqtt]\nclient_id = \"{client_id}\"\n\n[store]\nbackend = \"postgres\"\n\n\
         [store.postgres]\nurl = \"{url}\"\nrefresh_s = 1\n"
    )
}

fn series(port: u16) -> Option<serde_json::Value> {
    let (code, body) = http_get(
        port,
        &format!(
            "/api/sites/s1/series?metric=pm25&from={T0}&to={}&step=60",
            T0 + 10 * 60_000
        ),
    );
    (code == 200).then(|| serde_json::from_str(&body).expect("series json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_stores_and_shows_readings() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database();
    let broker = embedded_broker();
    let port = broker.addr().port();
    let data = tempfile::tempdir().expect("temp dir");
    let agg = AggregatorProcess::serve_with(port, data.path(), &config(&url, "pg-one"));

    let root = TopicRoot::default();
    let msgs: Vec<(String, Vec<u8>)> = (1..=5u64)
        .map(|seq| {
            let r = reading(T0 + seq as i64 * 60_000, seq, 1);
            (root.reading("s1", "d1"), r.encode())
        })
        // A duplicate publish is stored once.
        .chain(std::iter::once((
            root.reading("s1", "d1"),
            reading(T0 + 60_000, 1, 1).encode(),
        )))
        .collect();
    publish_all(port, "pg-serve-pub", msgs).await;

    let http = agg.http_port;
    let points = tokio::task::spawn_blocking(move || {
        eventually(60, "five points in the series", || {
            let s = series(http)?;
            let points = s["points"].as_array()?.clone();
            (points.len() == 5).then_some(points)
        })
    })
    .await
    .expect("wait");
    let means: Vec<f64> = points.iter().filter_map(|p| p["mean"].as_f64()).collect();
    assert_eq!(means, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(points.iter().all(|p| p["count"] == 1));
    let metrics = agg.metrics();
    assert_eq!(
        support::metric(&metrics, "dustwatch_readings_stored_total"),
        Some(5.0),
        "{metrics}"
    );

    // A second instance on the same database, with a data directory of its own, serves the
    // same series and the newest reading.
    let other_data = tempfile::tempdir().expect("temp dir");
    let other = AggregatorProcess::serve_with(port, other_data.path(), &config(&url, "pg-two"));
    let other_port = other.http_port;
    let (same, sites) = tokio::task::spawn_blocking(move || {
        let same = series(other_port).expect("series from the second instance");
        let sites = eventually(30, "the newest reading on the second instance", || {
            let (code, body) = http_get(other_port, "/api/sites");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (code == 200 && v[0]["latest"]["reading"]["seq"] == 5).then_some(v)
        });
        (same, sites)
    })
    .await
    .expect("second instance");
    assert_eq!(same["points"].as_array().map(Vec::len), Some(5));
    assert_eq!(sites[0]["id"], "s1");
    // Users, orders, notices, patrol, device commands and the notification outbox live in
    // PostgreSQL too: neither instance creates a SQLite file in its data directory.
    for dir in [data.path(), other_data.path()] {
        let db = dir.join("dustwatch.db");
        assert!(!db.exists(), "{} exists", db.display());
    }
    other.interrupt();
    assert!(agg.interrupt().success());

    // `dustwatch report` reads the same database through the same config file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"))
        .arg("--config")
        .arg(data.path().join("test-config.toml"))
        .args(["report", "--date", "2017-01-01", "--format", "json"])
        .output()
        .expect("run dustwatch report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report json");
    assert_eq!(report["date"], "2017-01-01", "{report}");
}
