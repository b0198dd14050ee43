//! A real `redis-server` on a loopback port, stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{free_port, TempDir, PATIENCE};

/// One redis-server process. `persistent` servers write an fsync-always AOF in a
/// temporary directory, so a kill and restart keeps every acknowledged write.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    persistent: bool,
    dir: TempDir,
}

impl RedisServer {
    /// Starts an in-memory server (no persistence).
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Starts a server; `persistent` keeps an fsync-always append-only file.
    pub async fn start_with(persistent: bool) -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            persistent,
            dir: TempDir::new("redis"),
        };
        server.spawn().await;
        server
    }

    /// The server's process ID (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--protected-mode",
            "no",
        ];
        if self.persistent {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            args.extend(["--appendonly", "no"]);
        }
        let child = Command::new(crate::require_binary(
            "REDIS_SERVER",
            "redis-server",
            "apt-get install -y redis-server",
        ))
        .args(&args)
        .current_dir(&self.dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.ping().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// True when the server answers PING.
    pub async fn ping(&self) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").await.is_ok() && s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (and, if persistent, the same data).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
