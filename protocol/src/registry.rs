//! Site registry: what the office knows about each site. Loaded from TOML by the aggregator and
//! embedded in simulator scenarios, so both sides describe sites the same way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    #[default]
    Construction,
    Road,
    Reference,
}

impl SiteKind {
    pub fn name(self) -> &'static str {
        match self {
            SiteKind::Construction => "construction",
            SiteKind::Road => "road",
            SiteKind::Reference => "reference",
        }
    }
}

/// Construction phase, from the dustiest to the quietest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Earthwork,
    Foundation,
    Structure,
    Fitout,
    #[default]
    Idle,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Earthwork => "earthwork",
            Phase::Foundation => "foundation",
            Phase::Structure => "structure",
            Phase::Fitout => "fitout",
            Phase::Idle => "idle",
        }
    }
}

/// One site in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteInfo {
    /// `[A-Za-z0-9_-]{1,64}`, the `{site}` of the topics.
    pub id: String,
    pub name: String,
    /// Street office or town the site belongs to (the unit of the daily report).
    pub street: String,
    #[serde(default)]
    pub kind: SiteKind,
    /// Construction phase; ignored for road and reference sites.
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// Id of the reference site whose series is this site's background.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A registry file: `[[site]]` tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// When true, readings from sites not listed here are rejected instead of registered as
    /// `unregistered`. Default false.
    #[serde(default)]
    pub strict: bool,
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteInfo>,
}
