//! An `sse-host` process (a cluster node), with the test policy and a Redis backend.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{policy_json, HostClient, TempDir, PATIENCE};

/// The `sse-host` binary next to the test executable (target/<profile>/sse-host).
pub fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("sse-host"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p sse-host` (tests/run.sh does)",
        bin.display()
    );
    bin
}

/// Writes a node's policy and TOML into a new directory (listening on port 0, with Redis
/// at `redis_url`, or the memory backend for `None`); returns the directory.
pub fn write_config(redis_url: Option<&str>, extra: &str) -> TempDir {
    write_config_with(redis_url, "", extra)
}

/// [`write_config`] with more keys of the `[redis]` table (`redis_extra`).
pub fn write_config_with(redis_url: Option<&str>, redis_extra: &str, extra: &str) -> TempDir {
    let dir = TempDir::new("node");
    std::fs::write(dir.0.join("policy.json"), policy_json(false).to_string()).unwrap();
    let backend = match redis_url {
        Some(url) => {
            // A fast safety tick by default; `redis_extra` may set its own.
            let block = if redis_extra.contains("block_ms") {
                ""
            } else {
                "block_ms = 1000\n"
            };
            // An empty URL: the cluster or Sentinels in `redis_extra` find Redis.
            let url = if url.is_empty() {
                String::new()
            } else {
                format!("url = \"{url}\"\n")
            };
            format!("backend = \"redis\"\n\n[redis]\n{url}lease_ttl_secs = 3\n{block}{redis_extra}\n\n")
        }
        None => "backend = \"memory\"\n\n".to_owned(),
    };
    let toml = format!(
        "listen = \"127.0.0.1:0\"\npolicy_file = \"policy.json\"\n{backend}\
         [publish]\nrate_per_sec = 1000000.0\nburst = 1000000.0\n\n{extra}\n"
    );
    std::fs::write(dir.0.join("host.toml"), toml).unwrap();
    dir
}

/// Waits (up to the patience) for the address a `sse-host serve` child started with
/// piped stdout prints first; `None` when it exits or stays silent.
pub async fn reported_address(child: &mut Child) -> Option<SocketAddr> {
    let stdout = child.stdout.take()?;
    let read = tokio::task::spawn_blocking(move || listening_address(stdout));
    tokio::time::timeout(PATIENCE, read).await.ok()?.ok()?
}

/// Reads the address `sse-host serve` prints first (`sse-host listening on http://ADDR/`,
/// or `https://` with TLS).
pub fn listening_address(stdout: std::process::ChildStdout) -> Option<SocketAddr> {
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok()?;
    let line = line.trim().strip_prefix("sse-host listening on ")?;
    line.strip_prefix("https://")
        .or_else(|| line.strip_prefix("http://"))?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// One host process; killed on drop.
pub struct Node {
    child: Child,
    api: HostClient,
    dir: TempDir,
}

impl Node {
    /// Starts a node on a port of its choosing using Redis at `redis_url`; `extra` is
    /// appended to its TOML (e.g. a `[history]` table). Returns once it listens.
    pub async fn start(redis_url: &str, extra: &str) -> Self {
        Self::start_with(Some(redis_url), extra).await
    }

    /// The same with the memory backend (history dies with the process).
    pub async fn start_memory(extra: &str) -> Self {
        Self::start_with(None, extra).await
    }

    /// [`Node::start`] with another policy.
    pub async fn start_with_policy(redis_url: &str, policy: &serde_json::Value) -> Self {
        let dir = write_config(Some(redis_url), "");
        std::fs::write(dir.0.join("policy.json"), policy.to_string()).unwrap();
        Self::start_in(dir).await
    }

    /// [`Node::start`] with more keys of the `[redis]` table.
    pub async fn start_with_redis(redis_url: &str, redis_extra: &str) -> Self {
        Self::start_in(write_config_with(Some(redis_url), redis_extra, "")).await
    }

    async fn start_with(redis_url: Option<&str>, extra: &str) -> Self {
        Self::start_in(write_config(redis_url, extra)).await
    }

    async fn start_in(dir: TempDir) -> Self {
        let log = std::fs::File::create(dir.0.join("host.log")).unwrap();
        let mut child = Command::new(host_bin())
            .args(["serve", "--config"])
            .arg(dir.0.join("host.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start sse-host");
        let addr = reported_address(&mut child).await;
        let node = Self {
            child,
            api: HostClient::new(&format!("http://{}", addr.unwrap_or(([127, 0, 0, 1], 0).into()))),
            dir,
        };
        assert!(
            addr.is_some(),
            "sse-host did not report its address; log:\n{}",
            node.log()
        );
        node
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the process.
    pub fn signal(&self, sig: &str) {
        crate::signal(self.pid(), sig);
    }

    /// Kills the process at once (a crash: no lease given back).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("host.log")).unwrap_or_default()
    }
}

impl Deref for Node {
    type Target = HostClient;
    fn deref(&self) -> &HostClient {
        &self.api
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}
