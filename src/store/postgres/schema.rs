//! The PostgreSQL schema and its migrations. Versions are rows of `schema_migrations`; each
//! instance migrates at start under a transaction-scoped advisory lock, so several aggregators
//! starting together migrate once. Metric columns (readings, rollups) are derived from
//! [`Metric::ALL`] and added with `ADD COLUMN IF NOT EXISTS` at every start, so a new metric
//! needs no migration of its own. Keys are the SQLite store's: readings by (site, ts, device,
//! boot, seq), so a redelivery is `ON CONFLICT DO NOTHING`.

use crate::store::schema::{rollup_cols, ROLLUPS};
use crate::store::StoreError;
use dustwatch_protocol::Metric;

/// Arbitrary key of the advisory lock migrations hold ("dustwatch" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x6475_7374_7761_7463;

/// Advisory lock held by a transaction appending to the outbox, and one by a transaction
/// appending alert history: ids of those tables become visible in id order (see the exporter).
pub const OUTBOX_LOCK: i64 = MIGRATION_LOCK + 1;
pub const ALERT_HISTORY_LOCK: i64 = MIGRATION_LOCK + 2;

/// Version 1: everything the SQLite store has, in PostgreSQL types.
const V1: &str = "
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    street TEXT NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    reference TEXT,
    registered BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT,
    fw TEXT,
    boot BIGINT,
    interval_s BIGINT,
    last_seen_ms BIGINT,
    PRIMARY KEY (site, device)
);
CREATE TABLE IF NOT EXISTS readings (
    site TEXT NOT NULL,
    ts BIGINT NOT NULL,
    device TEXT NOT NULL,
    boot BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    interval_s BIGINT NOT NULL,
    flags TEXT,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (site, ts, device, boot, seq)
);
CREATE TABLE IF NOT EXISTS latest (
    site TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    ts BIGINT NOT NULL,
    reading TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    boot BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (site, device, boot, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (site, ts);
CREATE TABLE IF NOT EXISTS status_history (
    id BIGSERIAL PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    ts BIGINT,
    state TEXT NOT NULL,
    fw TEXT,
    boot BIGINT,
    interval_s BIGINT
);
CREATE TABLE IF NOT EXISTS city_levels (
    ts BIGINT PRIMARY KEY,
    level TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id BIGINT PRIMARY KEY,
    site TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    acknowledged BOOLEAN NOT NULL,
    ack_by TEXT,
    ack_comment TEXT,
    opened_ts BIGINT NOT NULL,
    updated_ts BIGINT NOT NULL,
    cleared_ts BIGINT,
    closed_ts BIGINT,
    offences BIGINT NOT NULL,
    level TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_site ON alerts (site, opened_ts);
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state);
CREATE TABLE IF NOT EXISTS alert_history (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL,
    change TEXT NOT NULL,
    ts BIGINT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    acknowledged BOOLEAN NOT NULL,
    evidence TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_history_by_alert ON alert_history (alert_id, id);
CREATE TABLE IF NOT EXISTS daily_stats (
    site TEXT NOT NULL,
    date TEXT NOT NULL,
    exceedance_minutes BIGINT NOT NULL,
    data_minutes BIGINT NOT NULL,
    activity_minutes BIGINT NOT NULL,
    night_activity_minutes BIGINT NOT NULL,
    sprinkling_runs BIGINT NOT NULL,
    alerts_opened BIGINT NOT NULL,
    alerts_closed BIGINT NOT NULL,
    level_max TEXT NOT NULL,
    closed BOOLEAN NOT NULL,
    not_judged_minutes BIGINT NOT NULL DEFAULT 0,
    not_judged TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (site, date)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGSERIAL PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BYTEA NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dead_letters_by_source ON dead_letters (source, id);
CREATE TABLE IF NOT EXISTS outbox (
    id BIGSERIAL PRIMARY KEY,
    kind SMALLINT NOT NULL,
    site TEXT,
    device TEXT,
    boot BIGINT,
    seq BIGINT,
    ts BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS export_cursor (
    name TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS partition_fences (
    partition BIGINT PRIMARY KEY,
    revision BIGINT NOT NULL
);
";

/// Version 2: what the office does (users, sessions, tokens, orders, re-inspections, notices,
/// the night patrol), commands to devices and the notification outbox, shared by instances.
/// One open order per alert is a unique index, so two instances cannot both give one.
const V2: &str = "
CREATE TABLE IF NOT EXISTS users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_ms);
CREATE TABLE IF NOT EXISTS api_tokens (
    hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline_ts BIGINT,
    note TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts BIGINT NOT NULL,
    state TEXT NOT NULL,
    escalations BIGINT NOT NULL DEFAULT 0,
    response TEXT,
    response_by TEXT,
    response_ts BIGINT
);
CREATE INDEX IF NOT EXISTS orders_by_alert ON orders (alert_id);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (issued_ts);
CREATE UNIQUE INDEX IF NOT EXISTS orders_one_open ON orders (alert_id) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS reinspections (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts BIGINT NOT NULL,
    note TEXT NOT NULL,
    photo TEXT,
    escalated_to TEXT
);
CREATE INDEX IF NOT EXISTS reinspections_by_order ON reinspections (order_id, id);
CREATE TABLE IF NOT EXISTS notices (
    id BIGSERIAL PRIMARY KEY,
    level TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notice_receipts (
    notice_id BIGINT NOT NULL,
    site TEXT NOT NULL,
    work TEXT NOT NULL,
    via TEXT,
    by_user TEXT,
    received_ts BIGINT,
    PRIMARY KEY (notice_id, site)
);
CREATE TABLE IF NOT EXISTS patrol_checkins (
    id BIGSERIAL PRIMARY KEY,
    night TEXT NOT NULL,
    site TEXT NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patrol_by_night ON patrol_checkins (night, site);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    command TEXT NOT NULL,
    by_user TEXT NOT NULL,
    sent_ms BIGINT NOT NULL,
    deadline_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    answered_ms BIGINT,
    ok BOOLEAN,
    detail TEXT,
    office_ts BIGINT
);
CREATE INDEX IF NOT EXISTS commands_by_site ON commands (site, sent_ms);
CREATE INDEX IF NOT EXISTS commands_by_state ON commands (state, deadline_ms);
CREATE TABLE IF NOT EXISTS notify_outbox (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL,
    change TEXT NOT NULL,
    site TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    alert TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_delivery (
    outbox_id BIGINT NOT NULL,
    target TEXT NOT NULL,
    due_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    done_ms BIGINT,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    PRIMARY KEY (outbox_id, target)
);
CREATE INDEX IF NOT EXISTS notify_delivery_pending ON notify_delivery (target, state, outbox_id);
CREATE INDEX IF NOT EXISTS notify_delivery_by_state ON notify_delivery (state);
CREATE TABLE IF NOT EXISTS notify_cursor (
    name TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
";

/// Version 3: how far the rules judged each site (read back when an instance takes a site
/// over), and the sequence several instances draw alert ids from, in blocks of
/// `progress::ID_BLOCK`, starting above every id already stored.
const V3: &str = "
CREATE TABLE IF NOT EXISTS rule_progress (
    site TEXT PRIMARY KEY,
    judged_to BIGINT NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS alert_id_blocks INCREMENT BY 64 MINVALUE 1 START WITH 1;
SELECT setval('alert_id_blocks', greatest((SELECT coalesce(max(id), 0) FROM alerts), 1));
";

/// Migration 3's text, for the test that its sequence steps by the block the writer assumes.
#[cfg(test)]
pub(super) fn alert_id_sequence_ddl() -> &'static str {
    V3
}

/// Migrations in order: (version, SQL). Append only.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3)];

/// The newest schema version this build knows.
pub const VERSION: i64 = 3;

/// Bring the database up to [`VERSION`] and add missing metric columns.
pub fn migrate(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")?;
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    if current > VERSION {
        return Err(StoreError::Config(format!(
            "the PostgreSQL schema is version {current}, newer than this build's {VERSION}: \
             upgrade dustwatch"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
    }
    tx.batch_execute(&metric_columns())?;
    tx.commit()?;
    Ok(())
}

/// `ADD COLUMN IF NOT EXISTS` for every metric in readings and the rollups (idempotent).
fn metric_columns() -> String {
    let mut sql = String::new();
    for m in Metric::ALL {
        sql.push_str(&format!(
            "ALTER TABLE readings ADD COLUMN IF NOT EXISTS {} DOUBLE PRECISION;\n",
            m.name()
        ));
    }
    for (table, _) in ROLLUPS {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (site TEXT NOT NULL, bucket BIGINT NOT NULL, \
             PRIMARY KEY (site, bucket));\n"
        ));
        for m in Metric::ALL {
            for c in rollup_cols(m) {
                sql.push_str(&format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {c} DOUBLE PRECISION;\n"
                ));
            }
        }
    }
    sql
}

/// The readings insert: one array parameter per column (`unnest`), so a batch of any size is
/// one statement; returns the keys actually inserted (a duplicate returns nothing).
pub fn insert_readings() -> String {
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let fixed = [
        "site",
        "ts",
        "device",
        "boot",
        "seq",
        "interval_s",
        "flags",
        "received_ms",
    ];
    let types = [
        "text", "int8", "text", "int8", "int8", "int8", "text", "int8",
    ];
    let cols: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(metrics.iter().copied())
        .collect();
    let params: Vec<String> = types
        .iter()
        .copied()
        .chain(metrics.iter().map(|_| "float8"))
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO readings ({cols}) SELECT * FROM unnest({params}) \
         ON CONFLICT DO NOTHING RETURNING site, ts, device, boot, seq",
        cols = cols.join(", "),
        params = params.join(", ")
    )
}

/// The rollup merge of one table: the batch's partial aggregates as arrays, merged into the
/// stored bucket (`least`/`greatest` ignore NULLs, as the SQLite `min(coalesce..)` does).
pub fn rollup_upsert(table: &str) -> String {
    let cols: Vec<String> = Metric::ALL.into_iter().flat_map(rollup_cols).collect();
    let params: Vec<String> = ["text", "int8"]
        .into_iter()
        .chain(cols.iter().map(|_| "float8"))
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let merge: Vec<String> = Metric::ALL
        .into_iter()
        .map(|m| {
            let [n, s, lo, hi] = rollup_cols(m);
            format!(
                "{n} = coalesce(t.{n}, 0) + coalesce(excluded.{n}, 0), \
                 {s} = coalesce(t.{s}, 0) + coalesce(excluded.{s}, 0), \
                 {lo} = least(t.{lo}, excluded.{lo}), {hi} = greatest(t.{hi}, excluded.{hi})"
            )
        })
        .collect();
    format!(
        "INSERT INTO {table} AS t (site, bucket, {cols}) SELECT * FROM unnest({params}) \
         ON CONFLICT (site, bucket) DO UPDATE SET {merge}",
        cols = cols.join(", "),
        params = params.join(", "),
        merge = merge.join(", ")
    )
}
