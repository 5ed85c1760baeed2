//! `[nats]`: the NATS cluster an instance ingests from, how device subjects are partitioned,
//! and the lease settings. Also the server-side subject mapping that must agree with it.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Where ingest reads device messages from (`[ingest] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// One MQTT broker (`[mqtt]`): the single-instance default.
    #[default]
    Mqtt,
    /// A NATS JetStream cluster (`[nats]`): several instances share the partitions.
    Nats,
}

/// `[nats]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Client URLs of the cluster's nodes (any subset works; the client learns the rest).
    /// Default `["nats://127.0.0.1:4222"]`.
    pub servers: Vec<String>,
    /// Partitions the device subjects are split into; must equal the `partition(P, ...)` of the
    /// servers' mapping (see [`NatsConfig::server_mappings`]). Default 8.
    pub partitions: u32,
    /// First token of the partitioned subjects: `{prefix}.{partition}.{subject}`. Default `dw`.
    pub subject_prefix: String,
    /// The JetStream stream capturing `{prefix}.>`. Default `DUSTWATCH`.
    pub stream: String,
    /// Copies of the stream and of the lease bucket kept by the cluster. Default 3.
    pub replicas: usize,
    /// Most bytes the stream keeps unconsumed; past it the servers refuse new messages (they are
    /// never silently dropped from the front). Default 2 GiB.
    pub stream_max_bytes: i64,
    /// The key-value bucket of leases and live instances. Default `dustwatch_leases`.
    pub lease_bucket: String,
    /// A lease not renewed for this long expires and another instance may take its partition;
    /// leases are renewed every third of it. Default 10 s.
    pub lease_ttl_s: u64,
    /// This instance's name in the bucket; default `{hostname}-{pid}`.
    pub instance: Option<String>,
    /// Most messages fetched (and committed in one transaction) per partition at once.
    /// Default 1 000.
    pub fetch_max: usize,
    /// A fetched message not acknowledged this long is delivered again. Default 30 s.
    pub ack_wait_s: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            servers: vec!["nats://127.0.0.1:4222".into()],
            partitions: 8,
            subject_prefix: "dw".into(),
            stream: "DUSTWATCH".into(),
            replicas: 3,
            stream_max_bytes: 2 << 30,
            lease_bucket: "dustwatch_leases".into(),
            lease_ttl_s: 10,
            instance: None,
            fetch_max: 1_000,
            ack_wait_s: 30,
        }
    }
}

#[derive(Debug, Error)]
pub enum NatsConfigError {
    #[error("[nats] servers is empty: name at least one node, e.g. \"nats://127.0.0.1:4222\"")]
    NoServers,
    #[error("[nats] partitions must be between 1 and 1024, got {0}")]
    Partitions(u32),
    #[error("[nats] lease_ttl_s must be at least 3 s, got {0}")]
    LeaseTtl(u64),
    #[error("[nats] {field} `{value}` must be one token of letters, digits, `-` or `_`")]
    Token { field: &'static str, value: String },
}

impl NatsConfig {
    pub fn validate(&self) -> Result<(), NatsConfigError> {
        if self.servers.is_empty() {
            return Err(NatsConfigError::NoServers);
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(NatsConfigError::Partitions(self.partitions));
        }
        if self.lease_ttl_s < 3 {
            return Err(NatsConfigError::LeaseTtl(self.lease_ttl_s));
        }
        let token = |field: &'static str, value: &str| {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if ok {
                Ok(())
            } else {
                Err(NatsConfigError::Token {
                    field,
                    value: value.to_string(),
                })
            }
        };
        token("subject_prefix", &self.subject_prefix)?;
        token("stream", &self.stream)?;
        token("lease_bucket", &self.lease_bucket)?;
        if let Some(i) = &self.instance {
            token("instance", i)?;
        }
        Ok(())
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_s)
    }

    /// The subjects of one partition, for its consumer's filter.
    pub fn partition_filter(&self, partition: u32) -> String {
        format!("{}.{partition}.>", self.subject_prefix)
    }

    /// The body of the servers' `mappings { ... }` block for MQTT topic root `root` (e.g.
    /// `dust/v1`): every device message `{root}/{site}/{device}/{kind}` (reading, event, status,
    /// HJ 212 frame) goes to partition `partition(P, site)`, so a site's messages stay in order
    /// in one partition; the city level goes to partition 0. Commands to devices are not mapped:
    /// a mapping moves a subject, and devices must still get theirs.
    pub fn server_mappings(&self, root: &str) -> String {
        let root = root.trim_matches('/').replace('/', ".");
        let p = &self.subject_prefix;
        let n = self.partitions;
        let mut lines: Vec<String> = ["reading", "event", "status", "hj212"]
            .iter()
            .map(|kind| {
                format!(
                    "  \"{root}.*.*.{kind}\": \"{p}.{{{{partition({n},1)}}}}.{root}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{kind}\""
                )
            })
            .collect();
        lines.push(format!(
            "  \"{root}.city.level\": \"{p}.0.{root}.city.level\""
        ));
        lines.join("\n")
    }

    /// The partition the servers' mapping puts `site`'s messages in: NATS's `partition(P, ...)`
    /// is FNV-1a (32 bit) of the subject token, modulo P. The token is the site as NATS spells
    /// an MQTT topic level (`.` becomes `//`).
    pub fn partition_of(&self, site: &str) -> u32 {
        let token = site.replace('.', "//");
        let hash = token.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        hash % self.partitions.max(1)
    }

    /// The MQTT topic a partitioned subject came from: the prefix and partition tokens dropped,
    /// `.` back to `/` (and `//`, NATS's spelling of an MQTT `.`, back to `.`). `None` for a
    /// subject outside `{prefix}.{partition}.`.
    pub fn topic_of(&self, subject: &str) -> Option<String> {
        let mut tokens = subject.split('.');
        if tokens.next() != Some(self.subject_prefix.as_str()) {
            return None;
        }
        tokens.next()?.parse::<u32>().ok()?;
        let rest: Vec<String> = tokens.map(|t| t.replace("//", ".")).collect();
        if rest.is_empty() {
            return None;
        }
        let topic = rest.join("/");
        Some(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partitioned_subject_gives_back_its_mqtt_topic() {
        let c = NatsConfig::default();
        assert_eq!(
            c.topic_of("dw.3.dust.v1.s1.d1.reading").as_deref(),
            Some("dust/v1/s1/d1/reading")
        );
        assert_eq!(
            c.topic_of("dw.0.dust.v1.city.level").as_deref(),
            Some("dust/v1/city/level")
        );
        assert_eq!(
            c.topic_of("dw.1.dust.v1.site//a.d1.reading").as_deref(),
            Some("dust/v1/site.a/d1/reading")
        );
        assert_eq!(c.topic_of("other.1.dust"), None);
        assert_eq!(c.topic_of("dw.x.dust"), None);
        assert_eq!(c.topic_of("dw.1"), None);
    }

    #[test]
    fn a_site_s_partition_is_fnv_1a_of_its_token() {
        // FNV-1a 32-bit test vectors: "a" = 0xe40c292c, "foobar" = 0xbf9cf968.
        let c = NatsConfig {
            partitions: 1 << 31,
            ..Default::default()
        };
        assert_eq!(c.partition_of("a"), 0xe40c_292c % (1 << 31));
        assert_eq!(c.partition_of("foobar"), 0xbf9c_f968 % (1 << 31));
        let c = NatsConfig {
            partitions: 4,
            ..Default::default()
        };
        assert_eq!(c.partition_of("foobar"), 0xbf9c_f968 % 4);
        assert_eq!(c.partition_of("a.b"), c.partition_of("a//b"));
    }

    #[test]
    fn the_mapping_partitions_by_the_site_token() {
        let c = NatsConfig {
            partitions: 4,
            ..Default::default()
        };
        let m = c.server_mappings("dust/v1");
        assert!(
            m.contains(
                "\"dust.v1.*.*.reading\": \"dw.{{partition(4,1)}}.dust.v1.{{wildcard(1)}}.{{wildcard(2)}}.reading\""
            ),
            "{m}"
        );
        assert!(m.contains("\"dust.v1.city.level\": \"dw.0.dust.v1.city.level\""));
        assert!(!m.contains("cmd"), "commands still reach the devices");
    }

    #[test]
    fn bad_settings_are_refused_with_the_field() {
        let bad = NatsConfig {
            partitions: 0,
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(NatsConfigError::Partitions(0))
        ));
        let bad = NatsConfig {
            subject_prefix: "a.b".into(),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("subject_prefix"));
        assert!(NatsConfig::default().validate().is_ok());
    }
}
