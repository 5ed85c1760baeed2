//! MQTT topics of contract v1: building them and parsing them back.

use thiserror::Error;

/// The default topic root (`dust/v1`).
pub const DEFAULT_ROOT: &str = "dust/v1";

/// Words under the root that are not site ids.
pub const RESERVED: [&str; 3] = ["city", "alerts", "reports"];

/// A topic root such as `dust/v1`, without trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoot(String);

impl Default for TopicRoot {
    fn default() -> Self {
        TopicRoot(DEFAULT_ROOT.to_string())
    }
}

impl TopicRoot {
    pub fn new(root: &str) -> Self {
        TopicRoot(root.trim_end_matches('/').to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn reading(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/reading", self.0)
    }
    pub fn event(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/event", self.0)
    }
    pub fn status(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/status", self.0)
    }
    pub fn hj212(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/hj212", self.0)
    }
    pub fn cmd(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/cmd", self.0)
    }
    /// A device's answers to commands.
    pub fn reply(&self, site: &str, device: &str) -> String {
        format!("{}/{site}/{device}/reply", self.0)
    }
    pub fn city_level(&self) -> String {
        format!("{}/city/level", self.0)
    }
    pub fn alert(&self, site: &str, rule: &str) -> String {
        format!("{}/alerts/{site}/{rule}", self.0)
    }
    pub fn daily_report(&self, date: &str) -> String {
        format!("{}/reports/daily/{date}", self.0)
    }
    /// Subscription filter for one device-side message kind across all sites and devices.
    pub fn all_devices(&self, kind: &str) -> String {
        format!("{}/+/+/{kind}", self.0)
    }

    /// Parse a topic under this root.
    pub fn parse<'a>(&self, topic: &'a str) -> Result<Topic<'a>, TopicError> {
        let rest = topic
            .strip_prefix(self.0.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(TopicError::OutsideRoot)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["city", "level"] => Ok(Topic::CityLevel),
            ["alerts", site, rule] => {
                check_id(site)?;
                Ok(Topic::Alert { site, rule })
            }
            ["reports", "daily", date] => Ok(Topic::DailyReport { date }),
            [site, device, kind] => {
                check_site_id(site)?;
                check_id(device)?;
                let (site, device) = (*site, *device);
                match *kind {
                    "reading" => Ok(Topic::Reading { site, device }),
                    "event" => Ok(Topic::Event { site, device }),
                    "status" => Ok(Topic::Status { site, device }),
                    "hj212" => Ok(Topic::Hj212 { site, device }),
                    "cmd" => Ok(Topic::Cmd { site, device }),
                    "reply" => Ok(Topic::Reply { site, device }),
                    other => Err(TopicError::UnknownKind(other.to_string())),
                }
            }
            _ => Err(TopicError::Shape),
        }
    }
}

/// A parsed topic; borrowed from the topic string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    Reading { site: &'a str, device: &'a str },
    Event { site: &'a str, device: &'a str },
    Status { site: &'a str, device: &'a str },
    Hj212 { site: &'a str, device: &'a str },
    Cmd { site: &'a str, device: &'a str },
    Reply { site: &'a str, device: &'a str },
    CityLevel,
    Alert { site: &'a str, rule: &'a str },
    DailyReport { date: &'a str },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("topic is not under the configured root")]
    OutsideRoot,
    #[error("topic does not have the shape root/site/device/kind")]
    Shape,
    #[error("unknown message kind `{0}`")]
    UnknownKind(String),
    #[error("id `{0}` is not 1-64 characters of [A-Za-z0-9_-]")]
    BadId(String),
    #[error("`{0}` is reserved and is not a site id")]
    ReservedSite(String),
}

/// True when `id` is a valid site or device id: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_id(id: &str) -> Result<(), TopicError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(TopicError::BadId(id.chars().take(80).collect()))
    }
}

/// A site id: a valid id that is not one of the reserved words.
pub fn check_site_id(id: &str) -> Result<(), TopicError> {
    check_id(id)?;
    if RESERVED.contains(&id) {
        return Err(TopicError::ReservedSite(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_device_topics() {
        let root = TopicRoot::default();
        let t = root.reading("site-01", "dev_1");
        assert_eq!(t, "dust/v1/site-01/dev_1/reading");
        assert_eq!(
            root.parse(&t),
            Ok(Topic::Reading {
                site: "site-01",
                device: "dev_1"
            })
        );
        assert_eq!(root.parse("dust/v1/city/level"), Ok(Topic::CityLevel));
    }

    #[test]
    fn rejects_bad_ids_and_reserved_sites() {
        let root = TopicRoot::default();
        assert!(matches!(
            root.parse("dust/v1/si te/d/reading"),
            Err(TopicError::BadId(_))
        ));
        assert!(matches!(
            root.parse("dust/v1/city/d/reading"),
            Err(TopicError::ReservedSite(_))
        ));
        let long = "a".repeat(65);
        assert!(root.parse(&format!("dust/v1/{long}/d/reading")).is_err());
        assert_eq!(
            root.parse("other/x/y/reading"),
            Err(TopicError::OutsideRoot)
        );
        assert!(matches!(
            root.parse("dust/v1/s/d/blob"),
            Err(TopicError::UnknownKind(_))
        ));
    }
}
