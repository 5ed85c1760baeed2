//! `dustwatch broker-config mosquitto`: the broker boundary of the production path, from the
//! registry. It writes, into one directory:
//!
//! - `passwd`: Mosquitto's password file, each password hashed as `mosquitto_passwd` does
//!   (PBKDF2-HMAC-SHA512, `$7$` format);
//! - `acl`: each device publishes only its own readings, events, status and HJ 212 frames and
//!   reads only its own commands; the office publishes the city level and commands; the
//!   aggregator reads everything and alone publishes alerts and reports;
//! - `mosquitto.conf`: the lines that use them, with anonymous clients refused and the username
//!   taken as the client id (nobody can take another's client id, the aggregator's above all);
//! - `credentials.toml` (mode 0600): every login in the clear, for configuring devices, the
//!   aggregator and the simulator (`sensors-sim --credentials`).
//!
//! Logins already in the directory's `credentials.toml` keep their passwords, so running it again
//! after adding a device changes nothing for the others.

use dustwatch_mqtt::credentials::{write_private, AggregatorLogin};
use dustwatch_mqtt::{Credentials, CredentialsError, DeviceLogin, Login};
use dustwatch_protocol::registry::Registry;
use dustwatch_protocol::TopicRoot;
use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// PBKDF2 rounds, as `mosquitto_passwd` writes them. Generated passwords carry 128 random bits,
/// so stretching adds nothing against guessing, while every device connection pays for it.
const ITERATIONS: u32 = 101;
/// Salt bytes, as `mosquitto_passwd` uses.
const SALT_LEN: usize = 12;
/// Random bytes per generated password (128 bits).
const PASSWORD_BYTES: usize = 16;

#[derive(Debug, Error)]
pub enum BrokerConfigError {
    #[error("device `{device}` of site `{site}`: {reason}")]
    BadDevice {
        site: String,
        device: String,
        reason: String,
    },
    #[error("the OS random source failed")]
    Random,
    #[error("cannot create `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

/// Who is who on the broker.
#[derive(Debug, Clone)]
pub struct Identities {
    pub topic_root: TopicRoot,
    /// The aggregator's client id (`[mqtt] client_id`): its ingest logs in under it and its
    /// publisher under `<client_id>-pub`.
    pub aggregator_client_id: String,
    pub office_username: String,
}

/// What was written where.
#[derive(Debug)]
pub struct Written {
    pub password_file: PathBuf,
    pub acl_file: PathBuf,
    pub conf_file: PathBuf,
    pub credentials_file: PathBuf,
    /// The aggregator's `[mqtt]` login lines (mode 0600).
    pub aggregator_file: PathBuf,
    pub credentials: Credentials,
    /// Sites of the registry without a `[[device]]` entry: their devices get no login.
    pub sites_without_devices: Vec<String>,
}

/// A device's username: `{site}.{device}`. Ids are `[A-Za-z0-9_-]`, so the dot cannot be part
/// of either, and no device name can equal the aggregator's or the office's.
pub fn device_username(site: &str, device: &str) -> String {
    format!("{site}.{device}")
}

/// The logins: those in `previous` kept, new ones with fresh passwords.
pub fn credentials(
    registry: &Registry,
    who: &Identities,
    previous: Option<&Credentials>,
) -> Result<Credentials, BrokerConfigError> {
    let kept = |username: &str| {
        previous.and_then(|p| {
            p.all_logins()
                .into_iter()
                .find(|l| l.username == username)
                .map(|l| l.password)
        })
    };
    let password_for = |username: &str| match kept(username) {
        Some(p) => Ok(p),
        None => generate_password(),
    };
    let mut devices: Vec<DeviceLogin> = Vec::new();
    for d in &registry.devices {
        let bad = |reason: String| BrokerConfigError::BadDevice {
            site: d.site.clone(),
            device: d.id.clone(),
            reason,
        };
        // Ids end up in ACL topics: a `+` or `#` would widen a device's rights.
        dustwatch_protocol::topic::check_site_id(&d.site).map_err(|e| bad(e.to_string()))?;
        if !dustwatch_protocol::topic::is_valid_id(&d.id) {
            return Err(bad("the id is not 1-64 characters of [A-Za-z0-9_-]".into()));
        }
        if devices.iter().any(|x| x.site == d.site && x.device == d.id) {
            return Err(bad("listed twice".into()));
        }
        let username = device_username(&d.site, &d.id);
        devices.push(DeviceLogin {
            site: d.site.clone(),
            device: d.id.clone(),
            password: password_for(&username)?,
            username,
        });
    }
    let aggregator = who.aggregator_client_id.clone();
    let publisher = format!("{aggregator}-pub");
    let aggregator_password = match kept(&aggregator) {
        Some(p) => p,
        None => generate_password()?,
    };
    Ok(Credentials {
        aggregator: AggregatorLogin {
            username: aggregator,
            publisher_username: publisher,
            password: aggregator_password,
        },
        office: Login {
            username: who.office_username.clone(),
            password: password_for(&who.office_username)?,
        },
        devices,
    })
}

/// The ACL file.
pub fn acl(credentials: &Credentials, root: &TopicRoot) -> String {
    let r = root.as_str();
    let mut out = String::from(
        "# dustwatch broker ACL (generated by `dustwatch broker-config mosquitto`).\n\
         # Anything not granted here is denied.\n\n",
    );
    let a = &credentials.aggregator;
    let _ = write!(
        out,
        "# The aggregator's ingest: reads everything under the root.\n\
         user {}\ntopic read {r}/#\n\n",
        a.username
    );
    let _ = writeln!(
        out,
        "# The aggregator's publisher: alerts and reports are its alone. It also sets the city\n\
         # level and sends device commands for office users of the dashboard (PUT\n\
         # /api/city/level, POST /api/sites/{{id}}/commands, behind the write token).\n\
         user {}\ntopic write {r}/alerts/#\ntopic write {r}/reports/#\ntopic write {}",
        a.publisher_username,
        root.city_level()
    );
    for d in &credentials.devices {
        let _ = writeln!(out, "topic write {}", root.cmd(&d.site, &d.device));
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "# The office: the city level and device commands; reads everything.\n\
         user {}\ntopic readwrite {}\ntopic read {r}/#",
        credentials.office.username,
        root.city_level()
    );
    for d in &credentials.devices {
        let _ = writeln!(out, "topic write {}", root.cmd(&d.site, &d.device));
    }
    out.push_str("\n# Devices: their own topics only.\n");
    for d in &credentials.devices {
        let _ = write!(
            out,
            "user {}\ntopic write {}\ntopic write {}\ntopic write {}\ntopic write {}\n\
             topic write {}\ntopic read {}\n\n",
            d.username,
            root.reading(&d.site, &d.device),
            root.event(&d.site, &d.device),
            root.status(&d.site, &d.device),
            root.hj212(&d.site, &d.device),
            root.reply(&d.site, &d.device),
            root.cmd(&d.site, &d.device),
        );
    }
    out
}

/// The password file: `username:$7$iterations$salt$hash`, one line per login.
pub fn password_file_text(credentials: &Credentials) -> Result<String, BrokerConfigError> {
    let mut out = String::new();
    for login in credentials.all_logins() {
        let _ = writeln!(
            out,
            "{}:{}",
            login.username,
            hash_password(&login.password)?
        );
    }
    Ok(out)
}

/// Mosquitto's `$7$` hash of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, BrokerConfigError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt)?;
    let mut hash = [0u8; 64];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        NonZeroU32::new(ITERATIONS).expect("a non-zero constant"),
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "$7${ITERATIONS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    ))
}

/// A password of 128 bits from the OS random source, URL-safe base64 (no quoting needed in TOML,
/// shells or Mosquitto's files).
pub fn generate_password() -> Result<String, BrokerConfigError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut bytes = [0u8; PASSWORD_BYTES];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn fill_random(buf: &mut [u8]) -> Result<(), BrokerConfigError> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| BrokerConfigError::Random)
}

/// The mosquitto.conf lines that put the files to use.
pub fn mosquitto_conf(password_file: &Path, acl_file: &Path) -> String {
    format!(
        "# dustwatch broker boundary (generated by `dustwatch broker-config mosquitto`).\n\
         # Copy into mosquitto.conf, or put this file in an `include_dir`.\n\
         allow_anonymous false\n\
         password_file {}\n\
         acl_file {}\n\
         # The client id is the username: nobody can take another client's id (and kick the\n\
         # aggregator off). The aggregator's ingest and publisher log in under two usernames.\n\
         use_username_as_clientid true\n\
         # Beyond one host, add TLS to the listener:\n\
         # listener 8883\n\
         # cafile /etc/mosquitto/certs/ca.pem\n\
         # certfile /etc/mosquitto/certs/server.pem\n\
         # keyfile /etc/mosquitto/certs/server.key\n",
        password_file.display(),
        acl_file.display()
    )
}

/// The `[mqtt]` lines of the aggregator's config for these credentials.
pub fn aggregator_toml(credentials: &Credentials) -> String {
    let a = &credentials.aggregator;
    format!(
        "[mqtt]\nclient_id = \"{}\"\nusername = \"{}\"\npublisher_username = \"{}\"\n\
         password = \"{}\"\n",
        a.username, a.username, a.publisher_username, a.password
    )
}

/// Write everything into `out` (created if missing).
pub fn write(
    registry: &Registry,
    who: &Identities,
    out: &Path,
) -> Result<Written, BrokerConfigError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BrokerConfigError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    // Absolute paths: mosquitto.conf is read from wherever Mosquitto runs.
    let out = std::fs::canonicalize(out).map_err(io(out))?;
    let credentials_file = out.join("credentials.toml");
    let previous = if credentials_file.exists() {
        Some(Credentials::load(&credentials_file)?)
    } else {
        None
    };
    let credentials = credentials(registry, who, previous.as_ref())?;
    credentials.save(&credentials_file)?;
    let aggregator = out.join("aggregator.toml");
    write_private(&aggregator, aggregator_toml(&credentials).as_bytes())
        .map_err(io(&aggregator))?;
    // Hashes only, but Mosquitto (which may run as another user) must read it: owner and
    // group, as mosquitto_passwd leaves it to the administrator.
    let password_file = out.join("passwd");
    write_mode(&password_file, &password_file_text(&credentials)?, 0o640)?;
    let acl_file = out.join("acl");
    write_mode(&acl_file, &acl(&credentials, &who.topic_root), 0o644)?;
    let conf_file = out.join("mosquitto.conf");
    write_mode(
        &conf_file,
        &mosquitto_conf(&password_file, &acl_file),
        0o644,
    )?;
    let sites_without_devices = registry
        .sites
        .iter()
        .filter(|s| !registry.devices.iter().any(|d| d.site == s.id))
        .map(|s| s.id.clone())
        .collect();
    Ok(Written {
        password_file,
        acl_file,
        conf_file,
        credentials_file,
        aggregator_file: aggregator,
        credentials,
        sites_without_devices,
    })
}

fn write_mode(path: &Path, text: &str, mode: u32) -> Result<(), BrokerConfigError> {
    let err = |source| BrokerConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, text).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::registry::DeviceInfo;

    fn device(site: &str, id: &str) -> DeviceInfo {
        toml::from_str(&format!("site = \"{site}\"\nid = \"{id}\"")).expect("device table")
    }

    fn who() -> Identities {
        Identities {
            topic_root: TopicRoot::default(),
            aggregator_client_id: "dustwatch-aggregator".into(),
            office_username: "office".into(),
        }
    }

    #[test]
    fn hashes_have_mosquittos_format_and_differ_by_salt() {
        let a = hash_password("secret").expect("hash");
        let b = hash_password("secret").expect("hash");
        assert_ne!(a, b, "a fresh salt each time");
        let parts: Vec<_> = a.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "101"]);
        assert_eq!(parts[3].len(), 16, "12-byte salt in base64");
        assert_eq!(parts[4].len(), 88, "64-byte SHA-512 in base64");
    }

    #[test]
    fn passwords_are_random_and_ids_cannot_widen_the_acl() {
        assert_ne!(
            generate_password().expect("random"),
            generate_password().expect("random")
        );
        assert_eq!(generate_password().expect("random").len(), 22);
        let registry = Registry {
            devices: vec![device("s1", "d+")],
            ..Default::default()
        };
        let e = credentials(&registry, &who(), None).expect_err("bad id");
        assert!(e.to_string().contains("d+"), "{e}");
        let registry = Registry {
            devices: vec![device("city", "d1")],
            ..Default::default()
        };
        assert!(
            credentials(&registry, &who(), None).is_err(),
            "reserved site"
        );
    }

    #[test]
    fn rerunning_keeps_existing_passwords() {
        let one = Registry {
            devices: vec![device("s1", "d1")],
            ..Default::default()
        };
        let first = credentials(&one, &who(), None).expect("first");
        let two = Registry {
            devices: vec![device("s1", "d1"), device("s1", "d2")],
            ..Default::default()
        };
        let second = credentials(&two, &who(), Some(&first)).expect("second");
        assert_eq!(second.devices[0], first.devices[0]);
        assert_eq!(second.aggregator, first.aggregator);
        assert_eq!(second.office, first.office);
        assert_eq!(second.devices[1].username, "s1.d2");
    }
}
