//! One `[[hj212.forward]]` target: where to send, what, and under which MN and PW.

use super::ForwardError;
use dustwatch_protocol::hj212::Cn;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The target's name in `/metrics` and of its cursor in the store. Default: `address`.
    #[serde(default)]
    pub name: Option<String>,
    /// The upstream platform, `host:port`.
    pub address: String,
    /// Only readings of these sites. Default: every site.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Only readings of the devices with these MNs (the registry's `[[device]]` MNs). Default:
    /// every device.
    #[serde(default)]
    pub mns: Vec<String>,
    /// Only these data commands: 2011 real-time, 2051 minute, 2061 hour, 2031 day. Default all.
    #[serde(default = "all_data_cns")]
    pub cns: Vec<u16>,
    /// MN to send under upstream. Default: each device's own MN; a reading of a device without
    /// one (a JSON device) is then skipped.
    #[serde(default)]
    pub mn: Option<String>,
    /// PW the upstream platform expects.
    pub pw: String,
    /// ST of the frames. Default 39 (construction-site dust).
    #[serde(default = "default_st")]
    pub st: u16,
    /// Ask for a 9014 data reply and send the next frame only once it came; without it within
    /// `reply_timeout_ms`, send the frame again over a new connection. Default false (a written
    /// frame counts as sent).
    #[serde(default)]
    pub reply: bool,
    /// How long a reply (and the write of a frame) may take before the frame is sent again over
    /// a new connection. Default 10,000 ms.
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
    /// Readings queued beyond this (the platform down for long) are given up, oldest first,
    /// counted in `dustwatch_hj212_forward_dropped_total`. Default 1,000,000.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
    /// Reconnects wait 0.5 s, doubling up to this. Default 30 s.
    #[serde(default = "default_max_backoff_s")]
    pub max_backoff_s: u64,
}

fn all_data_cns() -> Vec<u16> {
    [Cn::RealTime, Cn::Minute, Cn::Hour, Cn::Day]
        .map(Cn::code)
        .to_vec()
}
fn default_st() -> u16 {
    39
}
fn default_reply_timeout_ms() -> u64 {
    10_000
}
fn default_max_backlog() -> u64 {
    1_000_000
}
fn default_max_backoff_s() -> u64 {
    30
}

/// A header field value: printable ASCII without the separators of a data segment.
fn header_value_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b'=' | b'&' | b','))
}

impl ForwardConfig {
    /// The name in metrics and in the cursor table.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }

    /// Refuse what would only fail later, naming the target.
    pub fn validate(&self) -> Result<(), ForwardError> {
        let bad = |why: String| ForwardError::Config {
            target: self.name().to_string(),
            why,
        };
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(bad(format!("address `{}` is not host:port", self.address))),
        }
        if let Some(cn) = self
            .cns
            .iter()
            .find(|c| !Cn::from_code(**c).is_some_and(Cn::is_data))
        {
            return Err(bad(format!("cn {cn} is not 2011, 2051, 2061 or 2031")));
        }
        if !header_value_ok(&self.pw) {
            return Err(bad(
                "pw must be 1-64 printable characters without ; = & ,".into()
            ));
        }
        if let Some(mn) = self.mn.as_ref().filter(|m| !header_value_ok(m)) {
            return Err(bad(format!(
                "mn `{mn}` must be 1-64 printable characters without ; = & ,"
            )));
        }
        if self.st > 99 {
            return Err(bad(format!("st {} is not two digits", self.st)));
        }
        if self.reply_timeout_ms == 0 || self.max_backlog == 0 {
            return Err(bad(
                "reply_timeout_ms and max_backlog must be above 0".into()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(extra: &str) -> Result<ForwardConfig, String> {
        let t: ForwardConfig = toml::from_str(&format!(
            "address = \"127.0.0.1:9212\"\npw = \"123456\"\n{extra}"
        ))
        .map_err(|e| e.to_string())?;
        t.validate().map_err(|e| e.to_string())?;
        Ok(t)
    }

    #[test]
    fn defaults_and_refusals() {
        let t = target("").expect("minimal");
        assert_eq!(t.cns, [2011, 2051, 2061, 2031]);
        assert_eq!((t.st, t.reply, t.name()), (39, false, "127.0.0.1:9212"));
        assert!(target("cns = [9014]").unwrap_err().contains("cn 9014"));
        assert!(target("mn = \"A;B\"").unwrap_err().contains("mn"));
        assert!(target("colour = 1").unwrap_err().contains("unknown field"));
        let no_port: ForwardConfig =
            toml::from_str("address = \"platform\"\npw = \"1\"").expect("parses");
        assert!(no_port
            .validate()
            .unwrap_err()
            .to_string()
            .contains("host:port"));
    }
}
