//! The Grafana and InfluxDB dashboards shipped in dashboards/grafana/ against what the exporter
//! really writes: every measurement, field and tag a query names must exist in the exporter's
//! line protocol, and the Grafana dashboard must work both imported and file-provisioned.

use dustwatch::export::line::{self, AlertChange, SiteTags};
use dustwatch_protocol::{AlertState, Change, EventTime, Level, Reading, Severity};
use std::collections::{BTreeMap, BTreeSet};

const GRAFANA: &str = include_str!("../dashboards/grafana/dustwatch-office.json");
const TEMPLATE: &str = include_str!("../dashboards/grafana/influxdb2-template.yml");

/// measurement -> (tags, fields), from lines the exporter renders for a full sample of each kind.
fn exported() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let tags = SiteTags {
        street: "迎宾路街道".into(),
        kind: "construction".into(),
    };
    let reading = Reading {
        ts: EventTime(1_483_228_800_000),
        seq: 1,
        boot: 1,
        interval_s: 60,
        pm25: Some(1.0),
        pm10: Some(1.0),
        tsp: Some(1.0),
        noise_dba: Some(1.0),
        temp_c: Some(1.0),
        rh_pct: Some(1.0),
        pressure_kpa: Some(100.0),
        wind_ms: Some(1.0),
        wind_deg: Some(1.0),
        ..Default::default()
    };
    let mut out = String::new();
    line::reading(&mut out, "s1", "d1", &tags, &reading);
    line::event(
        &mut out,
        "s1",
        "d1",
        &tags,
        "sprinkler_on",
        1,
        1,
        EventTime(1),
    );
    line::city_level(&mut out, Level::Red, EventTime(1));
    let change = AlertChange {
        alert_id: 1,
        site: "s1".into(),
        rule: "pm10-hourly".into(),
        change: Change::Opened,
        state: AlertState::Active,
        severity: Severity::Violation,
        acknowledged: false,
        ts: EventTime(1),
    };
    let alert_tags = SiteTags {
        street: "x".into(),
        kind: "construction".into(),
    };
    line::alert(&mut out, &alert_tags, &change);
    let mut map: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for l in out.lines() {
        // measurement,tag=v,tag=v field=v,field=v ts (no spaces inside the sample's values)
        let mut parts = l.splitn(3, ' ');
        let series = parts.next().expect("series");
        let fields = parts.next().expect("fields");
        let mut series = series.split(',');
        let m = series.next().expect("measurement").to_string();
        let entry = map.entry(m).or_default();
        entry
            .0
            .extend(series.map(|t| t.split('=').next().unwrap_or_default().to_string()));
        entry.1.extend(
            fields
                .split(',')
                .map(|f| f.split('=').next().unwrap_or_default().to_string()),
        );
    }
    map
}

/// `r._measurement == "m"`, `r._field == "f"` and `r.name` references of one Flux query.
fn names(query: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let after = |needle: &str| -> Vec<String> {
        query
            .match_indices(needle)
            .filter_map(|(i, _)| {
                let rest = &query[i + needle.len()..];
                Some(rest[..rest.find('"')?].to_string())
            })
            .collect()
    };
    let refs = query
        .match_indices("r.")
        .filter(|(i, _)| *i == 0 || !query.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            query[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty() && !n.starts_with('_'))
        .collect();
    (after("r._measurement == \""), after("r._field == \""), refs)
}

fn check(query: &str, exported: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>) {
    let (measurements, fields, refs) = names(query);
    assert!(
        !measurements.is_empty(),
        "query names no measurement: {query}"
    );
    for m in &measurements {
        let (tags, known) = exported
            .get(m)
            .unwrap_or_else(|| panic!("measurement `{m}` is not exported:\n{query}"));
        for f in &fields {
            assert!(known.contains(f), "field `{f}` is not in `{m}`:\n{query}");
        }
        // After a pivot, fields are columns too.
        for r in &refs {
            assert!(
                tags.contains(r) || known.contains(r),
                "`r.{r}` is neither a tag nor a field of `{m}`:\n{query}"
            );
        }
    }
}

#[test]
fn every_grafana_panel_names_what_the_exporter_writes() {
    let exported = exported();
    let dashboard: serde_json::Value = serde_json::from_str(GRAFANA).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let query = target["query"].as_str().expect("a Flux query");
            check(query, &exported);
            queries += 1;
        }
    }
    assert!(queries >= 5, "{queries} queries checked");
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if var["type"] == "query" {
            let q = var["query"]
                .as_str()
                .or_else(|| var["query"]["query"].as_str())
                .expect("variable query");
            check(q, &exported);
        }
    }
}

#[test]
fn the_grafana_dashboard_works_imported_and_provisioned() {
    // File provisioning cannot fill import placeholders such as ${DS_INFLUXDB}; a data-source
    // variable works both ways.
    assert!(
        !GRAFANA.contains("${DS_"),
        "an import-only placeholder is left"
    );
    let dashboard: serde_json::Value = serde_json::from_str(GRAFANA).expect("dashboard JSON");
    assert!(dashboard.get("__inputs").is_none());
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data-source variable");
    assert_eq!(ds["query"], "influxdb");
    let uid = format!("${{{}}}", ds["name"].as_str().expect("name"));
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
    }
}

#[test]
fn every_influxdb_template_query_names_what_the_exporter_writes() {
    let exported = exported();
    // The template's queries are YAML block scalars after `query: |-`.
    let mut queries = 0;
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let key = l.trim_start();
        if !(key.starts_with("query: |-") || key.starts_with("- query: |-")) {
            continue;
        }
        let indent = |s: &str| s.len() - s.trim_start().len();
        let base = indent(l);
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|s| s.trim().is_empty() || indent(s) > base)
            .copied()
            .collect();
        let query = body.join("\n");
        if query.contains("_measurement") {
            check(&query, &exported);
            queries += 1;
        }
    }
    assert!(queries >= 6, "{queries} template queries checked");
}
