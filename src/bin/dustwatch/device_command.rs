//! `dustwatch command <site> <device> sprinkle --duration 10m`: a command to a device through a
//! running aggregator's API (which stores it, publishes it and watches for the answer).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dustwatch_protocol::time::MINUTE;
use dustwatch_protocol::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct CommandArgs {
    /// Site id.
    pub site: String,
    /// Device id within the site.
    pub device: String,
    #[command(subcommand)]
    pub action: Action,
    /// The aggregator's dashboard address.
    #[arg(
        long,
        env = "DUSTWATCH_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// The write token (printed by the aggregator at start, or configured).
    #[arg(
        long,
        env = "DUSTWATCH_WRITE_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Who is sending it, as recorded with the command.
    #[arg(long, env = "USER", global = true)]
    pub by: Option<String>,
    /// Return once the command is sent, without waiting for the device's answer.
    #[arg(long, global = true)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Switch the sprinklers on for a while.
    Sprinkle {
        /// How long: `600`, `600s`, `10m`, `1h`.
        #[arg(long, value_parser = parse_duration)]
        duration: u32,
    },
    /// Change the reporting interval (1 s to 1 h).
    SetInterval {
        /// `30s`, `1m`, …
        #[arg(long, value_parser = parse_duration)]
        interval: u32,
    },
    /// Restart the device.
    Reboot,
}

/// Seconds from `600`, `600s`, `10m` or `1h`.
fn parse_duration(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u32 = num
        .parse()
        .map_err(|_| format!("`{s}`: a whole number with s, m or h, e.g. 10m"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{s}`: the unit is s, m or h")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{s}` is too long"))
}

pub fn run(args: CommandArgs) -> Result<()> {
    let command = match args.action {
        Action::Sprinkle { duration } => Command::Sprinkle {
            duration_s: duration,
        },
        Action::SetInterval { interval } => Command::SetInterval {
            interval_s: interval,
        },
        Action::Reboot => Command::Reboot,
    };
    let server = args.server.trim_end_matches('/');
    let mut body = serde_json::to_value(&command)?;
    body["device"] = args.device.clone().into();
    if let Some(by) = &args.by {
        body["by"] = by.clone().into();
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .build();
    let token = args.token.unwrap_or_default();
    let answer = agent
        .post(&format!("{server}/api/sites/{}/commands", args.site))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    let row: serde_json::Value = match answer {
        Ok(r) => serde_json::from_str(&r.into_string()?)?,
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            bail!("the aggregator refused the command (HTTP {code}): {text}");
        }
        Err(e) => bail!("cannot reach the aggregator at {server}: {e}"),
    };
    let id = row["id"]
        .as_str()
        .context("the answer has no command id")?
        .to_string();
    println!("command {id} sent to {}/{}", args.site, args.device);
    if args.no_wait {
        return Ok(());
    }
    // The aggregator times the command out itself: wait until it says how it ended.
    let started = Instant::now();
    let deadline = row["deadline_ms"].as_i64().unwrap_or(0) - row["sent_ms"].as_i64().unwrap_or(0);
    let limit = Duration::from_millis(u64::try_from(deadline).unwrap_or(MINUTE.unsigned_abs()))
        + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let text = agent
            .get(&format!("{server}/api/commands/{id}"))
            .call()
            .map_err(|e| anyhow::anyhow!("cannot read command {id}: {e}"))?
            .into_string()?;
        let now: serde_json::Value = serde_json::from_str(&text)?;
        match now["state"].as_str() {
            Some("sent") if started.elapsed() < limit => continue,
            Some("answered") if now["ok"] == true => {
                println!("answered: done {}", now["detail"].as_str().unwrap_or(""));
                return Ok(());
            }
            Some("answered") => bail!(
                "the device did not carry it out: {}",
                now["detail"].as_str().unwrap_or("")
            ),
            Some(other) => bail!("command {id}: {other}"),
            None => bail!("command {id}: unreadable answer {now}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("600"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
