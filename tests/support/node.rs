//! An `sse-host` process (a cluster node), with the test policy and a Redis backend.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{free_port, policy_json, HostClient, TempDir};

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

/// Writes a node's policy and TOML into a new directory; returns it and the port.
pub fn write_config(redis_url: &str, extra: &str) -> (TempDir, u16) {
    let dir = TempDir::new("node");
    std::fs::write(dir.0.join("policy.json"), policy_json(false).to_string()).unwrap();
    let port = free_port();
    let toml = format!(
        "listen = \"127.0.0.1:{port}\"\npolicy_file = \"policy.json\"\nbackend = \"redis\"\n\n\
         [redis]\nurl = \"{redis_url}\"\nlease_ttl_secs = 3\nblock_ms = 1000\n\n\
         [publish]\nrate_per_sec = 1000000.0\nburst = 1000000.0\n\n{extra}\n"
    );
    std::fs::write(dir.0.join("host.toml"), toml).unwrap();
    (dir, port)
}

/// One host process; killed on drop.
pub struct Node {
    child: Child,
    api: HostClient,
    dir: TempDir,
}

impl Node {
    /// Starts a node on a free port using Redis at `redis_url`; `extra` is appended to
    /// its TOML (e.g. a `[history]` table). Returns once it accepts connections.
    pub async fn start(redis_url: &str, extra: &str) -> Self {
        let (dir, port) = write_config(redis_url, extra);
        let log = std::fs::File::create(dir.0.join("host.log")).unwrap();
        let child = Command::new(host_bin())
            .args(["serve", "--config"])
            .arg(dir.0.join("host.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sse-host");
        let node = Self {
            child,
            api: HostClient::new(&format!("http://127.0.0.1:{port}")),
            dir,
        };
        assert!(
            crate::wait_for_port(port).await,
            "sse-host did not listen on {port}; log:\n{}",
            node.log()
        );
        node
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {}", self.pid());
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
