//! Broker URLs: `mqtt://host:port` (also `tcp://`), `mqtts://host:port` (also `ssl://`), or a
//! bare `host:port`. The port defaults to 1883 (plain) or 8883 (TLS); an IPv6 address goes in
//! brackets (`mqtt://[::1]:1883`).

use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad broker URL `{url}`: {reason} (expected mqtt://host:port or mqtts://host:port)")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

/// Plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Plain,
    Tls,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Plain => 1883,
            Scheme::Tls => 8883,
        }
    }
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: Scheme,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let bad = |reason: &str| UrlError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = match url.split_once("://") {
            None => (Scheme::Plain, url),
            Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
                "mqtt" | "tcp" => (Scheme::Plain, rest),
                "mqtts" | "ssl" => (Scheme::Tls, rest),
                other => return Err(bad(&format!("unknown scheme `{other}`"))),
            },
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "only scheme, host and port are allowed (no path or login)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` around an IPv6 address"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("expected `:port` after `]`"))?,
                    ),
                ),
            }
        } else {
            match rest.split_once(':') {
                None => (rest, None),
                Some((_, p)) if p.contains(':') => {
                    return Err(bad("an IPv6 address goes in brackets, e.g. [::1]:1883"))
                }
                Some((h, p)) => (h, Some(p)),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("port `{p}` is not a number in 1..=65535")))?,
        };
        Ok(BrokerUrl {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Tls
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Plain => "mqtt",
            Scheme::Tls => "mqtts",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (Scheme, String, u16) {
        let u = BrokerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (u.scheme, u.host, u.port)
    }

    #[test]
    fn schemes_hosts_and_ports() {
        let plain = |h: &str, p| (Scheme::Plain, h.to_string(), p);
        let tls = |h: &str, p| (Scheme::Tls, h.to_string(), p);
        assert_eq!(ok("mqtt://127.0.0.1:1883"), plain("127.0.0.1", 1883));
        assert_eq!(ok("tcp://broker:1884/"), plain("broker", 1884));
        assert_eq!(ok("broker.example:1885"), plain("broker.example", 1885));
        assert_eq!(ok("broker"), plain("broker", 1883));
        assert_eq!(ok("mqtts://broker"), tls("broker", 8883));
        assert_eq!(ok("ssl://broker:9000"), tls("broker", 9000));
        assert_eq!(ok("MQTTS://broker:8884"), tls("broker", 8884));
        assert_eq!(ok("mqtt://[::1]:1883"), plain("::1", 1883));
        assert_eq!(ok("mqtts://[fe80::1]"), tls("fe80::1", 8883));
        assert_eq!(ok("[::1]:1999"), plain("::1", 1999));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ws://broker:80", "unknown scheme"),
            ("mqtt://:1883", "missing host"),
            ("mqtt://broker:x", "not a number"),
            ("mqtt://broker:0", "not a number"),
            ("mqtt://broker:70000", "not a number"),
            ("mqtt://::1:1883", "brackets"),
            ("mqtt://[::1:1883", "unclosed"),
            ("mqtt://[::1]1883", "expected `:port`"),
            ("mqtt://user:pw@broker:1883", "no path or login"),
            ("mqtt://broker:1883/topic", "no path or login"),
        ] {
            let e = BrokerUrl::parse(url).expect_err(url);
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for url in ["mqtt://broker:1883", "mqtts://[::1]:8883"] {
            let u = BrokerUrl::parse(url).expect("valid");
            assert_eq!(u.to_string(), url);
            assert_eq!(BrokerUrl::parse(&u.to_string()), Ok(u));
        }
    }
}
