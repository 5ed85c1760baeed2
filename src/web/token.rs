//! The bearer token for write actions: configured (environment variable, config value or a
//! file), or 128 bits from the operating system's random source.

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("set either [http] write_token or token_file, not both")]
    Both,
    #[error("cannot read the write token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the write token {0} is empty")]
    Empty(String),
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// The token and whether it was generated (then it is shown to the operator, once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteToken {
    pub token: String,
    pub generated: bool,
}

/// The configured token (`write_token`, else the contents of `token_file`), else a new one.
pub fn resolve(
    write_token: Option<&str>,
    token_file: Option<&Path>,
) -> Result<WriteToken, TokenError> {
    let configured = match (write_token, token_file) {
        (Some(_), Some(_)) => return Err(TokenError::Both),
        (Some(t), None) => Some((t.trim().to_owned(), "in the configuration".to_owned())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.to_owned(),
                source,
            })?;
            Some((text.trim().to_owned(), format!("in {}", path.display())))
        }
        (None, None) => None,
    };
    match configured {
        Some((token, _)) if !token.is_empty() => {
            if token.len() < 16 {
                tracing::warn!(
                    len = token.len(),
                    "the write token is short; use at least 16 random characters"
                );
            }
            Ok(WriteToken {
                token,
                generated: false,
            })
        }
        Some((_, origin)) => Err(TokenError::Empty(origin)),
        None => Ok(WriteToken {
            token: generate()?,
            generated: true,
        }),
    }
}

/// 128 bits from the OS random source, as 32 hex digits.
pub fn generate() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(TokenError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_128_random_bits() {
        let a = resolve(None, None).expect("token");
        let b = resolve(None, None).expect("token");
        assert!(a.generated);
        assert_eq!(a.token.len(), 32);
        assert!(a.token.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.token, b.token);
    }

    #[test]
    fn configured_tokens_come_from_the_value_or_the_file() {
        let t = resolve(Some("from-config-0123456789"), None).expect("token");
        assert_eq!(t.token, "from-config-0123456789");
        assert!(!t.generated);
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file-0123456789\n").expect("write");
        let t = resolve(None, Some(&file)).expect("token");
        assert_eq!(
            (t.token.as_str(), t.generated),
            ("from-file-0123456789", false)
        );
        assert!(matches!(
            resolve(Some("x"), Some(&file)),
            Err(TokenError::Both)
        ));
        std::fs::write(&file, "  \n").expect("write");
        assert!(matches!(
            resolve(None, Some(&file)),
            Err(TokenError::Empty(_))
        ));
        assert!(matches!(
            resolve(None, Some(&dir.path().join("missing"))),
            Err(TokenError::Read { .. })
        ));
    }
}
