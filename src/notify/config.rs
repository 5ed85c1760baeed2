//! Notification settings (`[notify]`, `[[notify.webhook]]`, `[notify.smtp]`) and what they
//! mean: which alert changes go to which target, and when.

use super::NotifyError;
use crate::web::i18n::Lang;
use chrono::{NaiveTime, TimeZone, Timelike};
use dustwatch_protocol::time::HOUR;
use dustwatch_protocol::TimeOfDay;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Quiet hours of every target that sets none, local time, as `"22:00-07:00"`: messages
    /// below `critical` wait until they end. Default none.
    pub quiet_hours: Option<String>,
    /// Longest pause between retries to a receiver that fails. Default 300 s.
    pub retry_max_s: u64,
    /// Finished deliveries are kept this many days. Default 30.
    pub keep_days: u32,
    /// The dashboard's address for links in messages, e.g. `http://dust.example.gov.cn`.
    /// Default none (no links).
    pub dashboard_url: Option<String>,
    pub webhook: Vec<WebhookConfig>,
    pub smtp: Option<SmtpConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            quiet_hours: None,
            retry_max_s: 300,
            keep_days: 30,
            dashboard_url: None,
            webhook: Vec::new(),
            smtp: None,
        }
    }
}

/// Which alert changes a target gets; an empty list lets everything through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Rule ids (`night_work`, …).
    pub rules: Vec<String>,
    /// Severities (`info`, `warning`, `violation`, `critical`).
    pub severities: Vec<String>,
    /// Streets/towns as registered.
    pub streets: Vec<String>,
}

/// The body a webhook receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// dustwatch's own JSON (`change`, `alert`, `site`, `text`).
    #[default]
    Generic,
    /// DingTalk group robot (markdown message; `secret` signs it).
    Dingtalk,
    /// WeCom (企业微信) group robot (markdown message).
    Wecom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and the delivery table; unique among targets.
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// DingTalk's signing secret (`SEC…`), when the robot has 加签 on.
    #[serde(default)]
    pub secret: Option<String>,
    /// A PEM file of the CA that signed an `https://` receiver's certificate (an office's own
    /// CA), trusted beside Mozilla's roots. Default none.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default, flatten)]
    pub route: Route,
    /// This target's quiet hours (`""` for none), else `[notify] quiet_hours`.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// The messages' language. Default `zh-CN`.
    #[serde(default)]
    pub language: Lang,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// Plain text: only for a relay on the same machine or a test sink.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 with `tls`, 587 with `starttls`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A PEM file of the CA that signed the server's certificate (an office's own CA), trusted
    /// beside Mozilla's roots. Default none.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// `Name <address>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, flatten)]
    pub route: Route,
    #[serde(default)]
    pub quiet_hours: Option<String>,
    #[serde(default)]
    pub language: Lang,
}

/// The name of the SMTP target in the delivery table.
pub const SMTP_TARGET: &str = "smtp";

/// A daily window of local time; `from > to` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl QuietHours {
    /// `"22:00-07:00"`; `""` is none.
    pub fn parse(s: &str) -> Result<Option<QuietHours>, NotifyError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || NotifyError::Config(format!("quiet hours `{s}`: write them as 22:00-07:00"));
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let from = TimeOfDay::parse(a).map_err(|_| bad())?.to_naive();
        let to = TimeOfDay::parse(b).map_err(|_| bad())?.to_naive();
        if from == to {
            return Err(bad());
        }
        Ok(Some(QuietHours { from, to }))
    }

    fn contains(&self, t: NaiveTime) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }

    /// When a message recorded at `at_ms` may go: at once, or when the quiet hours end.
    pub fn release_at(&self, at_ms: i64, tz: chrono_tz::Tz) -> i64 {
        let Some(at) = chrono::DateTime::from_timestamp_millis(at_ms) else {
            return at_ms;
        };
        let local = at.with_timezone(&tz);
        let t = local.time().with_nanosecond(0).unwrap_or(local.time());
        if !self.contains(t) {
            return at_ms;
        }
        // The end is today, or tomorrow when the window wraps midnight and we are before it.
        let mut day = local.date_naive();
        if t >= self.to {
            day = day.succ_opt().unwrap_or(day);
        }
        let end = day.and_time(self.to);
        match tz.from_local_datetime(&end).earliest() {
            Some(e) => e.timestamp_millis().max(at_ms),
            // A gap (daylight saving): an hour later is past it.
            None => at_ms + HOUR,
        }
    }
}

impl NotifyConfig {
    /// Check every target (names unique, URLs and quiet hours readable).
    pub fn validate(&self) -> Result<(), NotifyError> {
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhook {
            if w.name.is_empty() || w.name == SMTP_TARGET || !names.insert(w.name.as_str()) {
                return Err(NotifyError::Config(format!(
                    "webhook name `{}` is empty, `{SMTP_TARGET}`, or used twice",
                    w.name
                )));
            }
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(NotifyError::Config(format!(
                    "webhook `{}`: url must start with http:// or https://",
                    w.name
                )));
            }
            self.quiet_of(w.quiet_hours.as_deref())?;
        }
        if let Some(s) = &self.smtp {
            if s.to.is_empty() {
                return Err(NotifyError::Config("[notify.smtp] to is empty".into()));
            }
            self.quiet_of(s.quiet_hours.as_deref())?;
        }
        Ok(())
    }

    /// A target's quiet hours: its own, else the default.
    pub fn quiet_of(&self, own: Option<&str>) -> Result<Option<QuietHours>, NotifyError> {
        match own.or(self.quiet_hours.as_deref()) {
            Some(s) => QuietHours::parse(s),
            None => Ok(None),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.webhook.is_empty() && self.smtp.is_none()
    }
}

impl Route {
    /// True when a change of this rule and severity at a site on `street` goes to the target.
    pub fn matches(&self, rule: &str, severity: &str, street: &str) -> bool {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        any(&self.rules, rule) && any(&self.severities, severity) && any(&self.streets, street)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .timestamp_millis()
    }

    #[test]
    fn quiet_hours_hold_until_they_end_in_local_time() {
        let q = QuietHours::parse("22:00-07:00")
            .expect("parses")
            .expect("some");
        let tz = chrono_tz::Asia::Shanghai;
        // 23:30 Beijing time: held until 07:00 the next morning.
        assert_eq!(
            q.release_at(ms("2026-01-05T23:30:00+08:00"), tz),
            ms("2026-01-06T07:00:00+08:00")
        );
        // 03:00: until 07:00 the same day.
        assert_eq!(
            q.release_at(ms("2026-01-06T03:00:00+08:00"), tz),
            ms("2026-01-06T07:00:00+08:00")
        );
        // 12:00: at once.
        let noon = ms("2026-01-06T12:00:00+08:00");
        assert_eq!(q.release_at(noon, tz), noon);
        assert!(QuietHours::parse("22-7").is_err());
        assert_eq!(QuietHours::parse("").expect("empty is none"), None);
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        let parse = |s: &str| toml::from_str::<NotifyConfig>(s).expect("parses");
        let twice = parse(
            "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\n\
             [[webhook]]\nname = \"a\"\nurl = \"http://y/\"\n",
        );
        assert!(twice.validate().is_err());
        let ftp = parse("[[webhook]]\nname = \"a\"\nurl = \"ftp://x/\"\n");
        assert!(ftp.validate().unwrap_err().to_string().contains("http"));
        let quiet =
            parse("quiet_hours = \"late\"\n[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\n");
        assert!(quiet
            .validate()
            .unwrap_err()
            .to_string()
            .contains("22:00-07:00"));
        assert!(toml::from_str::<NotifyConfig>(
            "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\nformat = \"telegram\"\n"
        )
        .is_err());
    }

    #[test]
    fn routes_match_by_rule_severity_and_street() {
        let r = Route {
            rules: vec!["night_work".into()],
            severities: vec![],
            streets: vec!["惠济街道".into()],
        };
        assert!(r.matches("night_work", "warning", "惠济街道"));
        assert!(!r.matches("pm10_hourly", "warning", "惠济街道"));
        assert!(!r.matches("night_work", "warning", "别的街道"));
        assert!(Route::default().matches("x", "y", "z"));
    }
}
