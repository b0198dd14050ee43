//! The `[tls]` table: the host's own TLS (certificate and key files, how often they are
//! checked for a change). Without it the host serves plain HTTP (behind Envoy, or a
//! private network).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use serde::Deserialize;

use super::Problems;

/// TLS as the host serves it, the pair already loaded and checked.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files are checked for a change (zero: on SIGHUP only).
    pub reload_check: Duration,
    /// The pair as loaded at start-up.
    pub initial: Arc<CertifiedKey>,
}

/// `[tls]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFile {
    /// PEM certificate chain, leaf first; relative to the config file.
    pub cert_file: Option<PathBuf>,
    /// PEM private key; relative to the config file.
    pub key_file: Option<PathBuf>,
    /// Seconds between checks of the files for a change; 0 reloads on SIGHUP only.
    pub reload_check_secs: u64,
}

impl Default for TlsFile {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_check_secs: 10,
        }
    }
}

impl TlsFile {
    /// The checked settings, `None` without TLS; every problem (a lone file, an
    /// unreadable, mismatched, expired or not-yet-valid pair) goes to `p`.
    pub(super) fn build(&self, p: &mut Problems) -> Option<TlsSettings> {
        p.check(
            self.reload_check_secs <= 86_400,
            "tls.reload_check_secs: must be at most 86400",
        );
        match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => match crate::tls::load_pair(cert, key) {
                Ok(initial) => Some(TlsSettings {
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                    reload_check: Duration::from_secs(self.reload_check_secs),
                    initial,
                }),
                Err(e) => {
                    p.push(format!("tls: {e}"));
                    None
                }
            },
            _ => {
                p.push("tls: cert_file and key_file go together (both, or neither for plain HTTP)".into());
                None
            }
        }
    }
}
