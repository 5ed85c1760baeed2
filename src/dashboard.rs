//! Declarative dashboards (`dashboards/*.toml`): a title and panels, each a chart kind over some
//! sites (a list, a street, or all), a metric, a time range and a size. Served at
//! `/dashboards/{name}` and rendered to files by `dustwatch render`. A bad definition is refused
//! with an error naming the line.

use crate::charts::data::{self, Frame, Overlays, RankBy};
use crate::charts::{self, ChartError, Format};
use crate::store::{StoreError, StoreReader};
use dustwatch_protocol::time::{DAY, HOUR, MINUTE};
use dustwatch_protocol::{Metric, SiteInfo};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The dashboards shipped in the repository, built in so the server finds them from any directory.
pub const SHIPPED: [(&str, &str); 2] = [
    ("office", include_str!("../dashboards/office.toml")),
    (
        "night-patrol",
        include_str!("../dashboards/night-patrol.toml"),
    ),
];

#[derive(Debug, Error)]
pub enum DashboardError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("no dashboard `{0}` (looked in ./dashboards and the shipped ones)")]
    Unknown(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("chart: {0}")]
    Chart(#[from] ChartError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub title: String,
    /// Seconds between page refreshes of the charts. Default 60.
    #[serde(default = "d_refresh")]
    pub refresh_s: u32,
    #[serde(rename = "panel")]
    pub panels: Vec<toml::Spanned<Panel>>,
}

fn d_refresh() -> u32 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// PM2.5, PM10, TSP of one site with limits, alerts, city level and sprinkling.
    SiteSeries,
    /// Sites × hours of `metric`.
    Heatmap,
    /// Sites ranked by `rank_by`.
    Ranking,
    /// Daily AQI per local day (one site, or the mean of several).
    AqiCalendar,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    pub kind: PanelKind,
    /// Site ids; a `site_series` panel takes exactly one.
    #[serde(default)]
    pub sites: Vec<String>,
    /// All registered sites of this street office or town (when `sites` is empty).
    pub street: Option<String>,
    /// Default pm10.
    #[serde(default = "d_metric")]
    pub metric: Metric,
    /// Time range ending at the fleet's newest event time: `90m`, `24h`, `7d`. Default 24h.
    #[serde(default = "d_range", deserialize_with = "range_ms")]
    pub range: i64,
    /// Ranking score. Default exceed_minutes.
    #[serde(default = "d_rank")]
    pub rank_by: RankBy,
    /// Pixels. Default 900 × 320.
    #[serde(default = "d_width")]
    pub width: u32,
    #[serde(default = "d_height")]
    pub height: u32,
}

fn d_metric() -> Metric {
    Metric::Pm10
}
fn d_range() -> i64 {
    DAY
}
fn d_rank() -> RankBy {
    RankBy::ExceedMinutes
}
fn d_width() -> u32 {
    900
}
fn d_height() -> u32 {
    320
}

/// `15m`, `6h`, `7d` as milliseconds (1 minute to 400 days).
pub fn parse_range(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("range `{s}`: use a number and m, h or d, e.g. `24h`"))?;
    let ms = match unit {
        "m" => n * MINUTE,
        "h" => n * HOUR,
        "d" => n * DAY,
        _ => return Err(format!("range `{s}`: the unit is m, h or d")),
    };
    if !(MINUTE..=400 * DAY).contains(&ms) {
        return Err(format!("range `{s}` is outside 1m..400d"));
    }
    Ok(ms)
}

fn range_ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = String::deserialize(d)?;
    parse_range(&s).map_err(serde::de::Error::custom)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parse a definition; `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Dashboard, DashboardError> {
    let invalid = |message: String| DashboardError::Invalid {
        path: path.to_string(),
        message,
    };
    // toml's message already names the line and column and quotes it.
    let d: Dashboard = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if d.panels.is_empty() {
        return Err(invalid("a dashboard needs at least one [[panel]]".into()));
    }
    for p in &d.panels {
        let line = line_of(text, p.span().start);
        let panel = p.get_ref();
        if panel.kind == PanelKind::SiteSeries && panel.sites.len() != 1 {
            return Err(invalid(format!(
                "line {line}: panel `{}`: a site_series panel takes exactly one site in `sites`",
                panel.title
            )));
        }
        if !(200..=3000).contains(&panel.width) || !(120..=2000).contains(&panel.height) {
            return Err(invalid(format!(
                "line {line}: panel `{}`: size {}x{} is outside 200x120..3000x2000",
                panel.title, panel.width, panel.height
            )));
        }
        for id in &panel.sites {
            if !dustwatch_protocol::topic::is_valid_id(id) {
                return Err(invalid(format!(
                    "line {line}: panel `{}`: `{id}` is not a site id ([A-Za-z0-9_-])",
                    panel.title
                )));
            }
        }
    }
    Ok(d)
}

pub fn load(path: &Path) -> Result<Dashboard, DashboardError> {
    let text = std::fs::read_to_string(path).map_err(|source| DashboardError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Find a dashboard by name: `dir/{name}.toml` first, then the shipped ones.
pub fn find(dir: &Path, name: &str) -> Result<Dashboard, DashboardError> {
    if !dustwatch_protocol::topic::is_valid_id(name) {
        return Err(DashboardError::Unknown(name.to_string()));
    }
    let file = dir.join(format!("{name}.toml"));
    if file.is_file() {
        return load(&file);
    }
    match SHIPPED.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => parse(text, &format!("(shipped) dashboards/{n}.toml")),
        None => Err(DashboardError::Unknown(name.to_string())),
    }
}

/// Names of the dashboards available: files in `dir` and the shipped ones.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    if dustwatch_protocol::topic::is_valid_id(stem)
                        && !out.iter().any(|n| n == stem)
                    {
                        out.push(stem.to_string());
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The sites a panel covers, from the registry in the store.
pub fn panel_sites(reader: &dyn StoreReader, panel: &Panel) -> Result<Vec<SiteInfo>, StoreError> {
    let all = reader.sites()?;
    Ok(if !panel.sites.is_empty() {
        panel
            .sites
            .iter()
            .filter_map(|id| {
                all.iter()
                    .find(|s| &s.info.id == id)
                    .map(|s| s.info.clone())
            })
            .collect()
    } else {
        all.into_iter()
            .filter(|s| s.registered)
            .filter(|s| panel.street.as_ref().is_none_or(|st| &s.info.street == st))
            .map(|s| s.info)
            .collect()
    })
}

/// Render one panel over the range ending at `now_ms`.
pub fn render_panel(
    reader: &dyn StoreReader,
    panel: &Panel,
    now_ms: i64,
    overlays: &Overlays,
    format: Format,
) -> Result<Vec<u8>, DashboardError> {
    let sites = panel_sites(reader, panel)?;
    let frame = Frame {
        from_ms: now_ms + 1 - panel.range,
        to_ms: now_ms + 1,
        size: (panel.width, panel.height),
    };
    let bytes = match panel.kind {
        PanelKind::SiteSeries => {
            let site = sites.first().cloned().unwrap_or_else(|| SiteInfo {
                id: panel.sites.first().cloned().unwrap_or_default(),
                name: "(unknown site)".into(),
                street: String::new(),
                kind: Default::default(),
                phase: Default::default(),
                lat: None,
                lon: None,
                reference: None,
            });
            let mut c = data::site_series(reader, &site, frame, overlays)?;
            c.title = format!("{} — {}", panel.title, c.title);
            charts::render(&c, format)?
        }
        PanelKind::Heatmap => charts::render(
            &data::heatmap(reader, &panel.title, &sites, panel.metric, frame, overlays)?,
            format,
        )?,
        PanelKind::Ranking => charts::render(
            &data::ranking(
                reader,
                &panel.title,
                &sites,
                panel.metric,
                panel.rank_by,
                frame,
                overlays,
            )?,
            format,
        )?,
        PanelKind::AqiCalendar => charts::render(
            &data::aqi_calendar(reader, &panel.title, &sites, frame, overlays)?,
            format,
        )?,
    };
    Ok(bytes)
}

/// File stem of panel `i`: its index and a slug of its title.
pub fn panel_stem(i: usize, panel: &Panel) -> String {
    let slug: String = panel
        .title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{i:02}-{slug}")
}

/// Render every panel as PNG and SVG into `out`; returns the files written.
pub fn render_to_dir(
    reader: &dyn StoreReader,
    dashboard: &Dashboard,
    now_ms: i64,
    overlays: &Overlays,
    out: &Path,
) -> Result<Vec<PathBuf>, DashboardError> {
    std::fs::create_dir_all(out).map_err(|source| DashboardError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    for (i, p) in dashboard.panels.iter().enumerate() {
        for format in [Format::Png, Format::Svg] {
            let bytes = render_panel(reader, p.get_ref(), now_ms, overlays, format)?;
            let path = out.join(format!(
                "{}.{}",
                panel_stem(i, p.get_ref()),
                format.extension()
            ));
            std::fs::write(&path, bytes).map_err(|source| DashboardError::Write {
                path: path.display().to_string(),
                source,
            })?;
            written.push(path);
        }
    }
    Ok(written)
}

/// `dustwatch render`: render `dashboard` from the store into `out`, with the range of every
/// panel ending at the newest stored reading.
pub fn render_from_store(
    reader: &dyn crate::store::StoreReader,
    dashboard_file: &Path,
    out: &Path,
    tz: chrono_tz::Tz,
) -> Result<Vec<PathBuf>, DashboardError> {
    let d = load(dashboard_file)?;
    let now = reader
        .latest()?
        .iter()
        .map(|(_, l)| l.reading.ts.ms())
        .max()
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let overlays = Overlays {
        tz,
        ..Default::default()
    };
    render_to_dir(reader, &d, now, &overlays, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dashboards_parse() {
        for (name, text) in SHIPPED {
            let d = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!d.panels.is_empty());
        }
    }

    #[test]
    fn bad_definition_names_the_line() {
        let text =
            "title = \"x\"\n\n[[panel]]\ntitle = \"a\"\nkind = \"heatmap\"\nrange = \"24x\"\n";
        let msg = parse(text, "bad.toml").expect_err("bad range").to_string();
        assert!(msg.contains("line 6"), "{msg}");
        assert!(msg.contains("24x"), "{msg}");

        let text = "title = \"x\"\n[[panel]]\ntitle = \"a\"\nkind = \"pie\"\n";
        let msg = parse(text, "bad.toml").expect_err("bad kind").to_string();
        assert!(msg.contains("line 4"), "{msg}");

        let text = "title = \"x\"\n[[panel]]\ntitle = \"a\"\nkind = \"site_series\"\nsites = []\n";
        let msg = parse(text, "bad.toml").expect_err("no site").to_string();
        assert!(msg.contains("line 2") || msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("90m"), Ok(90 * MINUTE));
        assert_eq!(parse_range("7d"), Ok(7 * DAY));
        assert!(parse_range("0m").is_err());
        assert!(parse_range("h").is_err());
    }
}
