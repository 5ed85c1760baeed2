//! InfluxDB line protocol for what dustwatch exports. Millisecond timestamps (event time).
//!
//! | measurement | tags | fields |
//! |---|---|---|
//! | `reading` | site, device, street, kind | pm25, pm10, tsp, noise_dba, temp_c, rh_pct, pressure_kpa, wind_ms, wind_deg, no2, so2, o3, co (float, valid values only), interval_s, boot, seq (integer) |
//! | `event` | site, device, street, kind, event | boot, seq (integer) |
//! | `city_level` | level | code (integer 0 none .. 4 red) |
//! | `alert` | site, street, kind, rule, change, state, severity | alert_id, active, severity_code, acknowledged (integer) |
//!
//! `kind` is the site kind (construction, road, reference). Strings are tags only (VictoriaMetrics
//! stores string fields as 0). Empty tags are left out (line protocol forbids them).

use dustwatch_protocol::{AlertState, Change, EventTime, Level, Metric, Reading, Severity};
use std::fmt::Write;

/// A site's tags as the registry knows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteTags {
    pub street: String,
    pub kind: String,
}

/// Escape a tag key or value: commas, equals signs and spaces get a backslash; line breaks and
/// backslashes (which would escape the next delimiter) become plain characters.
fn escape_tag(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            ',' | '=' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' => out.push('/'),
            c => out.push(c),
        }
    }
}

fn tag(out: &mut String, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(',');
    out.push_str(key);
    out.push('=');
    escape_tag(out, value);
}

/// Fields writer: puts the separating commas.
struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn float(&mut self, key: &str, v: f64) {
        if v.is_finite() {
            self.sep();
            // `{:?}` keeps a decimal point ("2.0"), so the field is a float on every server.
            let _ = write!(self.out, "{key}={v:?}");
        }
    }
    fn int(&mut self, key: &str, v: i64) {
        self.sep();
        let _ = write!(self.out, "{key}={v}i");
    }
    fn sep(&mut self) {
        self.out.push(if self.first { ' ' } else { ',' });
        self.first = false;
    }
}

/// Tags are written sorted by key (what InfluxDB prefers): device, kind, site, street.
fn site_tags(out: &mut String, site: &str, device: &str, tags: &SiteTags) {
    tag(out, "device", device);
    tag(out, "kind", &tags.kind);
    tag(out, "site", site);
    tag(out, "street", &tags.street);
}

/// One `reading` line. Values with an invalid HJ 212 flag are left out (they stay in SQLite).
pub fn reading(out: &mut String, site: &str, device: &str, tags: &SiteTags, r: &Reading) {
    out.push_str("reading");
    site_tags(out, site, device, tags);
    let mut f = Fields { out, first: true };
    for m in Metric::ALL {
        if let Some(v) = r.valid(m) {
            f.float(m.name(), v);
        }
    }
    f.int("interval_s", i64::from(r.interval_s));
    f.int("boot", i64::from(r.boot));
    f.int("seq", r.seq as i64);
    let _ = writeln!(out, " {}", r.ts.ms());
}

/// One `event` line.
#[allow(clippy::too_many_arguments)]
pub fn event(
    out: &mut String,
    site: &str,
    device: &str,
    tags: &SiteTags,
    kind: &str,
    boot: i64,
    seq: i64,
    ts: EventTime,
) {
    out.push_str("event");
    tag(out, "device", device);
    tag(out, "event", kind);
    tag(out, "kind", &tags.kind);
    tag(out, "site", site);
    tag(out, "street", &tags.street);
    let mut f = Fields { out, first: true };
    f.int("boot", boot);
    f.int("seq", seq);
    let _ = writeln!(out, " {}", ts.ms());
}

/// Numeric code of a city level, for graphs.
pub fn level_code(level: Level) -> i64 {
    match level {
        Level::None => 0,
        Level::Blue => 1,
        Level::Yellow => 2,
        Level::Orange => 3,
        Level::Red => 4,
    }
}

/// One `city_level` line.
pub fn city_level(out: &mut String, level: Level, ts: EventTime) {
    out.push_str("city_level");
    tag(out, "level", level.name());
    let mut f = Fields { out, first: true };
    f.int("code", level_code(level));
    let _ = writeln!(out, " {}", ts.ms());
}

/// One alert transition (a row of the rules engine's `alert_history`).
#[derive(Debug, Clone)]
pub struct AlertChange {
    pub alert_id: i64,
    pub site: String,
    pub rule: String,
    pub change: Change,
    pub state: AlertState,
    pub severity: Severity,
    pub acknowledged: bool,
    pub ts: EventTime,
}

/// Numeric severity, for graphs: info 0, warning 1, violation 2, critical 3.
fn severity_code(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Violation => 2,
        Severity::Critical => 3,
    }
}

/// One `alert` line: a transition of an alert.
pub fn alert(out: &mut String, tags: &SiteTags, a: &AlertChange) {
    out.push_str("alert");
    tag(out, "change", a.change.name());
    tag(out, "kind", &tags.kind);
    tag(out, "rule", &a.rule);
    tag(out, "severity", a.severity.name());
    tag(out, "site", &a.site);
    tag(out, "state", a.state.name());
    tag(out, "street", &tags.street);
    let mut f = Fields { out, first: true };
    f.int("alert_id", a.alert_id);
    f.int("active", i64::from(a.state == AlertState::Active));
    f.int("severity_code", severity_code(a.severity));
    f.int("acknowledged", i64::from(a.acknowledged));
    let _ = writeln!(out, " {}", a.ts.ms());
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::Flag;

    #[test]
    fn reading_line_has_sorted_tags_valid_fields_and_ms_time() {
        let mut r = Reading {
            ts: EventTime(1_483_516_800_000),
            seq: 42,
            boot: 3,
            interval_s: 60,
            pm25: Some(245.0),
            pm10: Some(312.5),
            ..Default::default()
        };
        r.flags.insert("pm10".into(), Flag::D);
        let tags = SiteTags {
            street: "Huiji Rd, east=1".into(),
            kind: "construction".into(),
        };
        let mut out = String::new();
        reading(&mut out, "s1", "d-1", &tags, &r);
        assert_eq!(
            out,
            "reading,device=d-1,kind=construction,site=s1,street=Huiji\\ Rd\\,\\ east\\=1 \
             pm25=245.0,interval_s=60i,boot=3i,seq=42i 1483516800000\n"
        );
    }

    #[test]
    fn empty_tags_are_left_out() {
        let mut out = String::new();
        event(
            &mut out,
            "s1",
            "d1",
            &SiteTags::default(),
            "sprinkler_on",
            1,
            7,
            EventTime(1000),
        );
        assert_eq!(
            out,
            "event,device=d1,event=sprinkler_on,site=s1 boot=1i,seq=7i 1000\n"
        );
        out.clear();
        city_level(&mut out, Level::Red, EventTime(5));
        assert_eq!(out, "city_level,level=red code=4i 5\n");
    }
}
