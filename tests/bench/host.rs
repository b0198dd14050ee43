//! The host under test: a real `sse-host` process with a bench config, and its resource
//! usage read from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub(crate) const JWT_SECRET: &str = "bench-jwt-secret-that-is-32-bytes-long!";

pub(crate) struct HostProcess {
    child: Child,
    pub(crate) addr: String,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl HostProcess {
    /// Starts the host; with `redis_url`, on the Redis backend.
    pub(crate) async fn start(bin: &Path, queue_capacity: usize, redis_url: Option<&str>) -> Result<Self> {
        let port = free_port()?;
        let dir = TempDir(std::env::temp_dir().join(format!("sse-bench-{}-{port}", std::process::id())));
        std::fs::create_dir_all(&dir.0)?;
        let policy = serde_json::json!({
            "jwt": {"hmac_secret": JWT_SECRET},
            "limits": {"max_connections_per_company": 20000},
            "edge": {"secret": "bench-edge-secret-that-is-32-bytes-long"},
        });
        std::fs::write(dir.0.join("policy.json"), policy.to_string())?;
        let backend = redis_url.map_or(String::new(), |url| {
            format!("backend = \"redis\"\n\n[redis]\nurl = \"{url}\"\n\n")
        });
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\npolicy_file = \"policy.json\"\n\n{backend}[stream]\nheartbeat_secs = 30\nqueue_capacity = {queue_capacity}\nmax_connections = 19000\n\n[publish]\nrate_per_sec = 10000000.0\nburst = 10000000.0\n"
        );
        std::fs::write(dir.0.join("host.toml"), toml)?;
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(dir.0.join("host.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let host = Self {
            child,
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&host.addr).await.is_ok() {
                return Ok(host);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("sse-host did not start listening on {}", host.addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        proc_field(self.pid(), "status", "VmRSS:").unwrap_or(0)
    }

    /// Proportional set size in KiB (shared pages divided among sharers).
    pub(crate) fn pss_kib(&self) -> u64 {
        proc_field(self.pid(), "smaps_rollup", "Pss:").unwrap_or(0)
    }

    /// User + system CPU time in seconds.
    pub(crate) fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.pid())
    }
}

/// User + system CPU time of any process, in seconds.
pub(crate) fn cpu_secs_of(pid: u32) -> f64 {
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14, 15); USER_HZ is 100 on Linux
    }
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
