//! A real `redis-server` on a loopback port, stopped on drop; and the deployments made of
//! them: a Redis Cluster, a master with replicas behind Sentinels.

mod cluster;
mod sentinel;

pub use cluster::RedisCluster;
pub use sentinel::{RedisSentinels, MASTER_NAME as SENTINEL_MASTER};

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
    /// More `redis-server` arguments (`--replicaof`, cluster mode).
    extra: Vec<String>,
    /// A configuration file in `dir`, given first (Sentinel needs one it can rewrite).
    config_file: Option<&'static str>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts an in-memory server (no persistence).
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Starts a server; `persistent` keeps an fsync-always append-only file.
    pub async fn start_with(persistent: bool) -> Self {
        Self::start_args(persistent, &[]).await
    }

    /// Starts a server with more arguments (e.g. `["--replicaof", "127.0.0.1", "6379"]`).
    pub async fn start_args(persistent: bool, extra: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            persistent,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            config_file: None,
            dir: TempDir::new("redis"),
        };
        server.spawn().await;
        server
    }

    /// A Sentinel (`redis-server sentinel.conf --sentinel`) watching `master` under
    /// `name`, agreeing with `quorum` Sentinels that it is down after 1 s without answers.
    pub async fn start_sentinel(master: &RedisServer, name: &str, quorum: u32) -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            persistent: false,
            extra: vec!["--sentinel".into()],
            config_file: Some("sentinel.conf"),
            dir: TempDir::new("sentinel"),
        };
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {port} {quorum}\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 3000\n",
            port = master.port
        );
        std::fs::write(server.dir.0.join("sentinel.conf"), conf).unwrap();
        server.spawn().await;
        server
    }

    /// A replica of `self`, started and caught up (its link to the master is up).
    pub async fn start_replica(&self) -> Self {
        let port = self.port.to_string();
        let replica = Self::start_args(false, &["--replicaof", "127.0.0.1", &port]).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !replica
            .command(&["INFO", "replication"])
            .await
            .contains("master_link_status:up")
        {
            assert!(tokio::time::Instant::now() < deadline, "the replica never linked up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        replica
    }

    /// The server's process ID (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts redis-server on `self.port` and waits until that port answers as this very
    /// process (`INFO server`'s `process_id`), so a port taken meanwhile by another
    /// test's server is noticed, not used. redis-server cannot bind port 0 and report
    /// it, so a first start that loses its port to another process retries on a new one.
    async fn spawn(&mut self) {
        let first_start = self.child.is_none();
        for _ in 0..5 {
            let mut child = self.server_command().spawn().expect("start redis-server");
            let pid = child.id();
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        first_start,
                        "redis-server could not restart on port {}: {status}",
                        self.port
                    );
                    break; // the port was taken meanwhile: try another
                }
                // PING too: it fails while an append-only file is being loaded.
                if self.process_id().await == Some(pid) && self.ping().await {
                    self.child = Some(child);
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "redis-server (pid {pid}) did not answer on {}",
                    self.port
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.port = free_port();
        }
        panic!("redis-server found no free port in 5 attempts");
    }

    fn server_command(&self) -> Command {
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
        let mut cmd = Command::new(crate::require_binary(
            "REDIS_SERVER",
            "redis-server",
            "apt-get install -y redis-server",
        ));
        cmd.args(self.config_file)
            .args(&args)
            .args(&self.extra)
            .current_dir(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// The `process_id` of the server answering on `self.port`, if one does.
    async fn process_id(&self) -> Option<u32> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        s.write_all(b"INFO server\r\n").await.ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(PATIENCE, s.read(&mut buf)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some(rest) = text.split("\r\nprocess_id:").nth(1) {
                if let Some((pid, _)) = rest.split_once("\r\n") {
                    return pid.trim().parse().ok();
                }
            }
            if text.starts_with('-') {
                return None; // an error reply
            }
        }
    }

    /// Sends one command (as a RESP array of bulk strings, so any bytes pass) and returns
    /// the raw reply's first chunk: enough for tests that write what a hostile client
    /// sharing the Redis could write.
    pub async fn command(&self, args: &[&str]) -> String {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf)).await.unwrap().unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// True when the server answers PING.
    pub async fn ping(&self) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").await.is_ok() && s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
    }

    /// Stops the process (SIGSTOP): it holds its connections but answers nothing, like
    /// a node that hangs or a network that drops its packets.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        crate::signal(self.pid().expect("running"), sig);
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
