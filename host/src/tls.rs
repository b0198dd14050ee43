//! The host's own TLS (rustls on ring), for deployments without Envoy in front: the
//! certificate and key are checked before the host binds (parse, key matches the
//! certificate, within its validity period), offered with ALPN `h2` and `http/1.1`, and
//! reloaded on SIGHUP or when the files change, without touching open connections: a
//! reload only changes what new handshakes are given. A pair that fails its checks on
//! reload is refused with an error in the log and the previous one stays in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The ALPN protocols offered, best first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate and key were refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM item of the kind needed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not belong to the certificate (or rustls cannot use it).
    #[error("{key} does not match {cert}: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// The certificate is outside its validity period now.
    #[error("{path}: certificate {state}: valid from {not_before} until {not_after}")]
    Validity {
        /// The certificate file.
        path: PathBuf,
        /// `has expired` or `is not valid yet`.
        state: &'static str,
        /// Start of validity (RFC 2822).
        not_before: String,
        /// End of validity (RFC 2822).
        not_after: String,
    },
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.into(),
        reason: reason.to_string(),
    }
}

/// Reads and checks a PEM certificate chain (leaf first) and its private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| file_error(cert, "no CERTIFICATE block in the file"))?;
    check_validity(cert, leaf, SystemTime::now())?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        let encrypted = std::fs::read_to_string(key).is_ok_and(|t| t.contains("ENCRYPTED"));
        if encrypted {
            file_error(key, "the key is encrypted: give the host an unencrypted PEM key (e.g. `openssl pkey -in k.pem -out plain.pem`)")
        } else {
            file_error(key, e)
        }
    })?;
    let signing = default_provider().key_provider.load_private_key(private).map_err(|e| {
        file_error(
            key,
            format!("unusable key (RSA, P-256, P-384 and Ed25519 are supported): {e}"),
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(e) => Err(TlsError::Mismatch {
            cert: cert.into(),
            key: key.into(),
            reason: e.to_string(),
        }),
    }
}

/// Refuses a certificate that has expired or is not valid yet at `now`.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>, now: SystemTime) -> Result<(), TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| file_error(path, e))?;
    let validity = parsed.validity();
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let state = if now > validity.not_after.timestamp() {
        "has expired"
    } else if now < validity.not_before.timestamp() {
        "is not valid yet"
    } else {
        return Ok(());
    };
    Err(TlsError::Validity {
        path: path.into(),
        state,
        not_before: validity.not_before.to_rfc2822().unwrap_or_default(),
        not_after: validity.not_after.to_rfc2822().unwrap_or_default(),
    })
}

/// The certificate new handshakes get; swapped by a reload.
#[derive(Debug)]
pub struct CertStore {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl CertStore {
    /// A store serving `initial`, reloadable from the same files.
    pub fn new(cert_file: PathBuf, key_file: PathBuf, initial: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self {
            cert_file,
            key_file,
            current: RwLock::new(initial),
        })
    }

    /// Loads the files again; on success new handshakes get the new pair.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = load_pair(&self.cert_file, &self.key_file)?;
        *self.current.write() = next;
        Ok(())
    }

    /// The acceptor for new connections: TLS 1.2 and 1.3 (rustls's safe defaults), no
    /// client certificates, ALPN h2 then http/1.1.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }

    /// What identifies the files' contents without reading them: modification and
    /// change times, size and inode (of the symlink targets), so a rename, a `cp -p` or a
    /// Kubernetes `..data` swap all show.
    fn stamp(&self) -> Option<[(i64, i64, u64, u64); 2]> {
        use std::os::unix::fs::MetadataExt;
        let one = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            let nanos = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
            Some((
                nanos(m.mtime(), m.mtime_nsec()),
                nanos(m.ctime(), m.ctime_nsec()),
                m.len(),
                m.ino(),
            ))
        };
        Some([one(&self.cert_file)?, one(&self.key_file)?])
    }

    /// Reloads on SIGHUP (`hangup`, installed by the caller before the host announced
    /// itself), and when the files change (checked every `check`; zero: SIGHUP only). A
    /// refused pair is tried again at every check until one loads (a certificate not
    /// valid yet becomes valid), logged once per distinct error. Runs until dropped.
    pub async fn watch(self: Arc<Self>, check: Duration, mut hangup: Option<tokio::signal::unix::Signal>) {
        let mut loaded = self.stamp();
        let mut failing: Option<String> = None;
        let period = if check.is_zero() {
            Duration::from_secs(3600)
        } else {
            check
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                _ = tick.tick() => {
                    if check.is_zero() || (failing.is_none() && self.stamp() == loaded) {
                        continue;
                    }
                    "the files changed"
                }
            };
            let stamp = self.stamp();
            match self.reload() {
                Ok(()) => {
                    loaded = stamp;
                    failing = None;
                    tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded ({why})");
                }
                Err(e) => {
                    let e = e.to_string();
                    if failing.as_deref() != Some(e.as_str()) {
                        tracing::error!("TLS certificate not reloaded ({why}), the previous one stays: {e}");
                    }
                    failing = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_validity, load_pair, TlsError};
    use rcgen::{CertificateParams, KeyPair};
    use rustls::pki_types::CertificateDer;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    fn pair(dir: &Path, name: &str, params: CertificateParams) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_matching_current_pair_loads_and_others_are_refused_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("sse-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let params = || CertificateParams::new(vec!["localhost".into()]).unwrap();
        let (cert, key) = pair(&dir, "good", params());
        load_pair(&cert, &key).expect("a fresh self-signed pair loads");

        let (_, other_key) = pair(&dir, "other", params());
        let err = load_pair(&cert, &other_key).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not match"), "{err}");

        let mut old = params();
        old.not_before = rcgen::date_time_ymd(2020, 1, 1);
        old.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let (cert, key) = pair(&dir, "expired", old);
        let err = load_pair(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("has expired"), "{err}");

        std::fs::write(dir.join("empty.pem"), "not pem").unwrap();
        let err = load_pair(&dir.join("empty.pem"), &key).unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
        let err = load_pair(&dir.join("missing.pem"), &key).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_pair_on_reload_is_refused_and_the_previous_one_stays() {
        use super::CertStore;
        use rustls::server::ResolvesServerCert;
        let dir = std::env::temp_dir().join(format!("sse-tls-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let params = || CertificateParams::new(vec!["localhost".into()]).unwrap();
        let (cert, key) = pair(&dir, "live", params());
        let store = CertStore::new(cert.clone(), key.clone(), load_pair(&cert, &key).unwrap());
        let before = store.current.read().clone();
        let (_, other_key) = pair(&dir, "other", params());
        std::fs::copy(&other_key, &key).unwrap(); // half a rotation: the key is new, the cert is not
        assert!(store.reload().is_err());
        assert!(
            std::sync::Arc::ptr_eq(&before, &store.current.read()),
            "the old pair still serves"
        );
        let (next_cert, next_key) = pair(&dir, "next", params());
        std::fs::copy(&next_cert, &cert).unwrap();
        std::fs::copy(&next_key, &key).unwrap();
        store.reload().unwrap();
        assert!(!std::sync::Arc::ptr_eq(&before, &store.current.read()));
        let _: &dyn ResolvesServerCert = &*store;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_certificate_not_valid_yet_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2090, 1, 1);
        params.not_after = rcgen::date_time_ymd(2091, 1, 1);
        let der = CertificateDer::from(params.self_signed(&key).unwrap().der().to_vec());
        let err = check_validity(Path::new("x.pem"), &der, SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("is not valid yet"), "{err}");
        let within = SystemTime::UNIX_EPOCH + Duration::from_secs(3_786_912_000); // 2090-01-02
        assert!(check_validity(Path::new("x.pem"), &der, within).is_ok());
    }
}
