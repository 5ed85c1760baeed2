//! Settings of device commands (`[commands]`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// A command unanswered this long after it was sent is timed out. Default 60 s.
    pub timeout_s: u64,
    /// Commands are kept this many days. Default 90.
    pub keep_days: u32,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            timeout_s: 60,
            keep_days: 90,
        }
    }
}
