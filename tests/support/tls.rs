//! Certificates made by the tests (rcgen), and TLS clients that trust only them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use sse_host::config::TlsSettings;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files.
pub struct DevCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl DevCert {
    /// A certificate valid from yesterday for a year.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self::with(dir, name, |_| {})
    }

    /// A certificate whose validity ended in 2021.
    pub fn expired(dir: &Path, name: &str) -> Self {
        Self::with(dir, name, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn with(dir: &Path, name: &str, adjust: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("names");
        adjust(&mut params);
        let cert = params.self_signed(&key).expect("self-signed");
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Self {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    /// The host's `[tls]` settings for this pair (checked like a config file's).
    pub fn settings(&self, reload_check: std::time::Duration) -> TlsSettings {
        TlsSettings {
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            reload_check,
            initial: sse_host::tls::load_pair(&self.cert, &self.key).expect("the pair loads"),
        }
    }
}

/// A client that trusts `trusted` only and offers `alpn`.
pub fn connector(trusted: &CertificateDer<'static>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).expect("a valid certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` (as `localhost`), or the handshake's error.
pub async fn connect(addr: SocketAddr, connector: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// `curl -sS -N -i` on the test stream (company `acme`, a viewer's token) at
/// `https://localhost:PORT`, with `version` (`--http2`, `--http1.1`), trusting `ca` only.
pub struct Curl {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Curl {
    pub fn stream(port: u16, ca: &Path, version: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let url = format!("https://localhost:{port}/sse/stream?companyId=acme&channel=dashboard-updates");
        let mut child = tokio::process::Command::new("curl")
            .args(["-sS", "-N", "-i", version, "--cacert"])
            .arg(ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args([
                "-H",
                &format!("Authorization: Bearer {}", crate::token("acme", "VIEWER")),
            ])
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("curl (apt-get install -y curl)");
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let read = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                let done = line.starts_with(prefix);
                seen.push(line);
                if done {
                    return;
                }
            }
            panic!("curl ended before {prefix:?}: {seen:?}");
        };
        tokio::time::timeout(crate::PATIENCE, read)
            .await
            .expect("curl's output in time");
        seen
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
