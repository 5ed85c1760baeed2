//! Site registry: what the office knows about each site. Loaded from TOML by the aggregator and
//! embedded in simulator scenarios, so both sides describe sites the same way.

use crate::hj212::{DeviceProfile, PmUnit};
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Default,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SiteKind {
    #[default]
    Construction,
    Road,
    Reference,
}

impl SiteKind {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Construction phase, from the dustiest to the quietest.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Default,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
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

impl SiteInfo {
    /// A site with an id, a name and a street; construction kind, idle phase, no location and
    /// no reference station until set.
    pub fn new(id: impl Into<String>, name: impl Into<String>, street: impl Into<String>) -> Self {
        SiteInfo {
            id: id.into(),
            name: name.into(),
            street: street.into(),
            kind: SiteKind::default(),
            phase: Phase::default(),
            lat: None,
            lon: None,
            reference: None,
        }
    }
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
    /// Devices (`[[device]]` tables): HJ 212 devices, identified by their MN on the native TCP
    /// listener, and MQTT devices that get a broker login from `dustwatch broker-config`.
    /// Optional: MQTT ingest needs no entry (the topic names the device). Default none.
    #[serde(default, rename = "device", skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceInfo>,
}

/// One HJ 212 device (`[[device]]`): who it is on the wire (MN, PW) and the settings its frames
/// do not carry. Devices are listed apart from `[[site]]` so a registry without HJ 212 devices
/// stays exactly as it was.
///
/// ```toml
/// [[device]]
/// site = "s1"
/// id = "d1"
/// mn = "410108HJ0000000000000001"
/// password = "123456"
/// unit = "mg/m3"            # default "ug/m3"
/// utc_offset_min = 480      # default 480 (+08:00)
/// realtime_interval_s = 60  # default 60
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// Site id (`{site}` of the topics).
    pub site: String,
    /// Device id within the site (`{device}` of the topics).
    pub id: String,
    /// HJ 212 MN (the device's unique id, usually 24 characters). Required to connect over TCP.
    #[serde(default)]
    pub mn: Option<String>,
    /// HJ 212 access password (PW). When set, frames with another PW are rejected. Default none
    /// (any PW is accepted).
    #[serde(default)]
    pub password: Option<String>,
    /// Unit of particulate values. Default µg/m³ (`"ug/m3"`).
    #[serde(default)]
    pub unit: PmUnit,
    /// Device clock offset from UTC in minutes. Default 480 (China).
    #[serde(default = "default_utc_offset_min")]
    pub utc_offset_min: i32,
    /// Interval of its real-time (2011) data in seconds. Default 60.
    #[serde(default = "default_realtime_interval_s")]
    pub realtime_interval_s: u32,
}

fn default_utc_offset_min() -> i32 {
    DeviceProfile::default().utc_offset_min
}

fn default_realtime_interval_s() -> u32 {
    DeviceProfile::default().realtime_interval_s
}

impl DeviceInfo {
    /// The settings the HJ 212 codec needs to turn this device's frames into readings.
    pub fn profile(&self) -> DeviceProfile {
        DeviceProfile {
            unit: self.unit,
            utc_offset_min: self.utc_offset_min,
            realtime_interval_s: self.realtime_interval_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_tables_are_optional_and_defaulted() {
        let plain: Registry =
            serde_json::from_str(r#"{"site":[{"id":"s1","name":"S","street":"t"}]}"#).unwrap();
        assert!(plain.devices.is_empty());
        let r: Registry = serde_json::from_str(
            r#"{"device":[{"site":"s1","id":"d1","mn":"MN1","unit":"mg/m3"}]}"#,
        )
        .unwrap();
        let d = &r.devices[0];
        assert_eq!(d.mn.as_deref(), Some("MN1"));
        assert_eq!(d.password, None);
        assert_eq!(
            d.profile(),
            DeviceProfile {
                unit: PmUnit::MgPerM3,
                ..DeviceProfile::default()
            }
        );
        assert!(
            serde_json::from_str::<Registry>(r#"{"device":[{"site":"s","id":"d","pw":"1"}]}"#)
                .is_err()
        );
    }
}
