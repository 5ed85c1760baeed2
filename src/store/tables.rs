//! The SQL of the tables the office's features keep beside the readings. `schema` creates and
//! migrates them; the modules that use them (acting/, commands.rs, notify_outbox.rs,
//! progress.rs) only query them, so the schema depends on none of those modules.

/// Users, sessions, API tokens, orders, re-inspections, notices and receipts, patrol check-ins
/// (schema 7).
pub const ACTING: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_tokens (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    deadline_ts INTEGER,
    note TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts INTEGER NOT NULL,
    state TEXT NOT NULL,
    escalations INTEGER NOT NULL DEFAULT 0,
    response TEXT,
    response_by TEXT,
    response_ts INTEGER
);
CREATE INDEX IF NOT EXISTS orders_by_alert ON orders (alert_id);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (issued_ts);
CREATE TABLE IF NOT EXISTS reinspections (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts INTEGER NOT NULL,
    note TEXT NOT NULL,
    photo TEXT,
    escalated_to TEXT
);
CREATE INDEX IF NOT EXISTS reinspections_by_order ON reinspections (order_id, id);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY,
    level TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_ts INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notice_receipts (
    notice_id INTEGER NOT NULL,
    site TEXT NOT NULL,
    work TEXT NOT NULL,
    via TEXT,
    by_user TEXT,
    received_ts INTEGER,
    PRIMARY KEY (notice_id, site)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS patrol_checkins (
    id INTEGER PRIMARY KEY,
    night TEXT NOT NULL,
    site TEXT NOT NULL,
    result TEXT NOT NULL,
    by_user TEXT NOT NULL,
    ts INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patrol_by_night ON patrol_checkins (night, site);
";

/// Commands sent to devices and their answers (schema 8; `office_ts` from schema 9).
pub const COMMANDS: &str = "
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    command TEXT NOT NULL,
    by TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    answered_ms INTEGER,
    ok INTEGER,
    detail TEXT,
    office_ts INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commands_by_site ON commands (site, sent_ms);
CREATE INDEX IF NOT EXISTS commands_by_state ON commands (state, deadline_ms);
";

/// The notification outbox, its deliveries and the router's cursor (schema 8).
pub const NOTIFY_OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    change TEXT NOT NULL,
    site TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    alert TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_delivery (
    outbox_id INTEGER NOT NULL,
    target TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_ms INTEGER,
    PRIMARY KEY (outbox_id, target)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notify_delivery_pending ON notify_delivery (target, state, outbox_id);
CREATE INDEX IF NOT EXISTS notify_delivery_by_state ON notify_delivery (state);
CREATE TABLE IF NOT EXISTS notify_cursor (
    name TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
";

/// How far the rules judged each site (schema 10).
pub const RULE_PROGRESS: &str = "CREATE TABLE IF NOT EXISTS rule_progress (
    site TEXT PRIMARY KEY,
    judged_to INTEGER NOT NULL
) WITHOUT ROWID;
";
