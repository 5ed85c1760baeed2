//! Message bodies: dustwatch's generic JSON, the DingTalk and WeCom group-robot markdown
//! messages (with DingTalk's signature), and the email's subject and text.

use super::i18n;
use crate::store::notify_outbox::{NotifyChange, OutboxRow};
use crate::web::i18n::Lang;
use base64::Engine;
use dustwatch_protocol::Severity;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::json;

/// What a message says about one alert change, whatever the format.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub row: &'a OutboxRow,
    pub site_name: &'a str,
    pub street: &'a str,
    pub tz: chrono_tz::Tz,
    pub lang: Lang,
    pub dashboard_url: Option<&'a str>,
}

impl Message<'_> {
    /// `【违规】新告警 · 某某工地` — the subject and the robots' title.
    pub fn title(&self) -> String {
        format!(
            "【{}】{} · {}",
            i18n::severity(self.lang, self.row.severity),
            i18n::change(self.lang, self.row.change),
            self.site_name
        )
    }

    /// The facts, one per line, as `label: value` pairs.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let t = i18n::texts(self.lang);
        let a = &self.row.alert;
        let time = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|d| {
                    d.with_timezone(&self.tz)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_else(|| "—".into())
        };
        let mut out = vec![
            (t.site, format!("{} ({})", self.site_name, self.row.site)),
            (t.street, self.street.to_string()),
            (t.rule, self.row.rule.clone()),
            (
                t.severity,
                i18n::severity(self.lang, self.row.severity).to_string(),
            ),
            (t.state, a["state"].as_str().unwrap_or("").to_string()),
            (t.opened_at, time(a["opened_ts"].as_i64())),
        ];
        if let Some(by) = a["ack_by"]
            .as_str()
            .filter(|_| self.row.change == NotifyChange::Acknowledged)
        {
            out.push((t.acknowledged_by, by.to_string()));
        }
        out
    }

    fn link(&self) -> Option<String> {
        self.dashboard_url.map(|u| {
            format!(
                "{}/sites/{}",
                u.trim_end_matches('/'),
                utf8_percent_encode(&self.row.site, NON_ALPHANUMERIC)
            )
        })
    }

    /// Plain text (the email body, the generic JSON's `text`).
    pub fn text(&self) -> String {
        let mut s = self.title();
        s.push_str("\n\n");
        for (k, v) in self.facts() {
            s.push_str(&format!("{k}: {v}\n"));
        }
        if let Some(l) = self.link() {
            s.push_str(&format!("\n{}: {l}\n", i18n::texts(self.lang).details));
        }
        s
    }

    fn markdown(&self, wecom: bool) -> String {
        let title =
            if wecom && matches!(self.row.severity, Severity::Violation | Severity::Critical) {
                format!(
                    "<font color=\"warning\">{}</font>",
                    md_escape(&self.title())
                )
            } else {
                md_escape(&self.title())
            };
        let mut s = format!("#### {title}\n");
        for (k, v) in self.facts() {
            s.push_str(&format!("> {k}: {}\n\n", md_escape(&v)));
        }
        if let Some(l) = self.link() {
            s.push_str(&format!("[{}]({l})\n", i18n::texts(self.lang).details));
        }
        s
    }

    /// dustwatch's own JSON: the change, the alert as it stands, the site, and a text.
    pub fn generic(&self) -> serde_json::Value {
        json!({
            "delivery": self.row.id,
            "change": self.row.change,
            "recorded_ms": self.row.recorded_ms,
            "alert": self.row.alert,
            "site": {"id": self.row.site, "name": self.site_name, "street": self.street},
            "title": self.title(),
            "text": self.text(),
        })
    }

    /// DingTalk group robot: a markdown message.
    pub fn dingtalk(&self) -> serde_json::Value {
        json!({
            "msgtype": "markdown",
            "markdown": {"title": self.title(), "text": self.markdown(false)},
        })
    }

    /// WeCom group robot: a markdown message (at most 4096 bytes of content).
    pub fn wecom(&self) -> serde_json::Value {
        let mut content = self.markdown(true);
        truncate_bytes(&mut content, 4096);
        json!({"msgtype": "markdown", "markdown": {"content": content}})
    }
}

/// Markdown's active characters in names and values, made literal.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '_' | '[' | ']' | '`' | '#' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// DingTalk's signature: HMAC-SHA256 over `"{timestamp}\n{secret}"` keyed by the secret,
/// base64, then URL-encoded. The robot refuses a timestamp more than an hour off.
pub fn dingtalk_sign(timestamp_ms: i64, secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    utf8_percent_encode(&b64, NON_ALPHANUMERIC).to_string()
}

/// The robot URL with `timestamp` and `sign` appended.
pub fn dingtalk_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}timestamp={timestamp_ms}&sign={}",
        dingtalk_sign(timestamp_ms, secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_signature_matches_the_documented_algorithm() {
        // Computed with Python's hmac/base64/urllib.parse.quote_plus, as DingTalk's docs show.
        assert_eq!(
            dingtalk_sign(1_700_000_000_000, "SECtest"),
            "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
        );
        assert_eq!(
            dingtalk_url("https://x/robot/send?access_token=t", "SECtest", 1),
            format!(
                "https://x/robot/send?access_token=t&timestamp=1&sign={}",
                dingtalk_sign(1, "SECtest")
            )
        );
    }
}
