//! The broker credentials file (TOML) that `dustwatch broker-config` writes beside the broker's
//! password and ACL files: one login per device, the aggregator's and the office's. The
//! aggregator, the simulator and the embedded broker read it; it holds passwords in the clear, so
//! it is written readable by its owner only.
//!
//! ```toml
//! [aggregator]
//! username = "dustwatch-aggregator"
//! publisher_username = "dustwatch-aggregator-pub"
//! password = "..."
//!
//! [office]
//! username = "office"
//! password = "..."
//!
//! [[device]]
//! site = "yb-01"
//! device = "m1"
//! username = "yb-01.m1"
//! password = "..."
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("cannot read credentials file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file `{path}`: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("cannot write credentials file `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A username and password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    // Passwords stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The aggregator's logins: ingest and publisher connect at the same time under two client ids,
/// and a broker that takes the username as the client id needs two usernames for that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorLogin {
    pub username: String,
    pub publisher_username: String,
    pub password: String,
}

/// One device's login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceLogin {
    pub site: String,
    pub device: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("site", &self.site)
            .field("device", &self.device)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub aggregator: AggregatorLogin,
    pub office: Login,
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceLogin>,
}

impl Credentials {
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| CredentialsError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Write the file readable and writable by its owner only (mode 0600 on Unix), replacing
    /// any earlier one.
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        let err = |source| CredentialsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string(self)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let text = format!(
            "# dustwatch broker credentials: passwords in the clear. Keep this file secret.\n{text}"
        );
        write_private(path, text.as_bytes()).map_err(err)
    }

    /// A device's login, if the file has one.
    pub fn device(&self, site: &str, device: &str) -> Option<Login> {
        self.devices
            .iter()
            .find(|d| d.site == site && d.device == device)
            .map(|d| Login {
                username: d.username.clone(),
                password: d.password.clone(),
            })
    }

    pub fn aggregator_login(&self) -> Login {
        Login {
            username: self.aggregator.username.clone(),
            password: self.aggregator.password.clone(),
        }
    }

    pub fn publisher_login(&self) -> Login {
        Login {
            username: self.aggregator.publisher_username.clone(),
            password: self.aggregator.password.clone(),
        }
    }

    /// Every (username, password) in the file.
    pub fn all_logins(&self) -> Vec<Login> {
        let mut out = vec![
            self.aggregator_login(),
            self.publisher_login(),
            self.office.clone(),
        ];
        out.extend(self.devices.iter().map(|d| Login {
            username: d.username.clone(),
            password: d.password.clone(),
        }));
        out
    }
}

/// Write `bytes` to `path` created with mode 0600 (Unix): the file never exists readable by
/// others, not even for a moment.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    // An existing file keeps its mode on open: set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}
