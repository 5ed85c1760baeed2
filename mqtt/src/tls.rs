//! TLS settings and the rustls client configuration built from them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} `{path}` holds no PEM certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("client key `{0}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    #[error("CA file `{path}`: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error(
        "set both client_cert and client_key (a client certificate needs its key), or neither"
    )]
    HalfClientAuth,
    #[error("no CA file given and the system's CA certificates cannot be loaded: {0}")]
    SystemRoots(std::io::Error),
    #[error("client certificate rejected: {0}")]
    ClientAuth(tokio_rustls::rustls::Error),
}

/// A built rustls client configuration, shared by every connection of a process.
pub type TlsClientConfig = Arc<ClientConfig>;

/// How to check the broker and, optionally, who we are to it. Used for `mqtts://` URLs only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) that signed the broker's certificate. None: the
    /// system's CA certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain), for brokers that require one (`require_certificate`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// The rustls client configuration: the broker's certificate must chain to the CA and name
    /// the host we connect to.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let client = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some((read_certs("client certificate", cert)?, read_key(key)?))
            }
            _ => return Err(TlsError::HalfClientAuth),
        };
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in read_certs("CA file", path)? {
                    roots.add(cert).map_err(|e| TlsError::BadCa {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
            }
            None => {
                // Unparsable system certificates are skipped, as browsers do.
                for cert in
                    rustls_native_certs::load_native_certs().map_err(TlsError::SystemRoots)?
                {
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(TlsError::ClientAuth)?,
        };
        Ok(Arc::new(config))
    }
}

fn open(what: &'static str, path: &Path) -> Result<std::io::BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open("client key", path)?)
        .map_err(|source| TlsError::Read {
            what: "client key",
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("dustwatch-mqtt-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let missing = TlsSettings {
            ca_file: Some(dir.join("nope.pem")),
            ..Default::default()
        };
        let e = missing.client_config().expect_err("missing CA file");
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let no_cert = TlsSettings {
            ca_file: Some(empty.clone()),
            ..Default::default()
        };
        let e = no_cert.client_config().expect_err("no certificate");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let half = TlsSettings {
            client_cert: Some(empty),
            ..Default::default()
        };
        assert!(matches!(
            half.client_config(),
            Err(TlsError::HalfClientAuth)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
