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
    /// More `redis-server` arguments (`--replicaof`, cluster mode).
    extra: Vec<String>,
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
            dir: TempDir::new("redis"),
        };
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
        cmd.args(&args)
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

/// A Redis Cluster of real `redis-server`s on loopback: 3 masters with a replica each,
/// created with `redis-cli --cluster create`, every node stopped on drop.
pub struct RedisCluster {
    /// Masters first (in slot order: 0-5460, 5461-10922, 10923-16383), then replicas.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts 6 nodes and joins them into a cluster; returns once every node says
    /// `cluster_state:ok`.
    pub async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let bus = free_port().to_string();
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus,
            ];
            nodes.push(RedisServer::start_args(false, &args).await);
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let cli = crate::require_binary("REDIS_CLI", "redis-cli", "apt-get install -y redis-tools");
        let out = Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for node in &cluster.nodes {
            while !node.command(&["CLUSTER", "INFO"]).await.contains("cluster_state:ok") {
                assert!(tokio::time::Instant::now() < deadline, "the cluster never became ok");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// The `[redis] cluster = [...]` value: every node as a seed.
    pub fn seeds_toml(&self) -> String {
        let seeds: Vec<String> = self.nodes.iter().map(|n| format!("\"{}\"", n.url())).collect();
        format!("cluster = [{}]", seeds.join(", "))
    }

    /// Which master (0-2) holds `company`'s keys.
    pub async fn master_of(&self, company: &str) -> usize {
        let key = format!("sse:{{{company}}}:meta");
        let reply = self.nodes[0].command(&["CLUSTER", "KEYSLOT", &key]).await;
        let slot: u32 = reply.trim().trim_start_matches(':').parse().expect("a slot");
        match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        }
    }
}

impl RedisCluster {
    /// The slot of `company`'s keys.
    pub async fn slot_of(&self, company: &str) -> String {
        let key = format!("sse:{{{company}}}:meta");
        let reply = self.nodes[0].command(&["CLUSTER", "KEYSLOT", &key]).await;
        reply.trim().trim_start_matches(':').to_owned()
    }

    async fn id_of(&self, node: usize) -> String {
        let reply = self.nodes[node].command(&["CLUSTER", "MYID"]).await;
        reply.lines().nth(1).expect("a node ID").to_owned()
    }

    /// Moves `slot` from master `from` to master `to` the way `redis-cli --cluster
    /// reshard` does: IMPORTING/MIGRATING, MIGRATE of its keys in batches, then the new
    /// owner announced to every master. Clients meanwhile get `ASK` (or `TRYAGAIN` for a
    /// command whose keys are split between the two).
    pub async fn migrate_slot(&self, slot: &str, from: usize, to: usize) {
        let (from_id, to_id) = (self.id_of(from).await, self.id_of(to).await);
        let ok = |reply: String| assert!(reply.starts_with("+OK"), "{reply}");
        ok(self.nodes[to]
            .command(&["CLUSTER", "SETSLOT", slot, "IMPORTING", &from_id])
            .await);
        ok(self.nodes[from]
            .command(&["CLUSTER", "SETSLOT", slot, "MIGRATING", &to_id])
            .await);
        let port = self.nodes[to].port.to_string();
        loop {
            // Few at a time: `command` reads one reply chunk of 512 bytes.
            let reply = self.nodes[from].command(&["CLUSTER", "GETKEYSINSLOT", slot, "5"]).await;
            let keys: Vec<&str> = reply
                .split("\r\n")
                .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
                .collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            ok(self.nodes[from].command(&args).await);
        }
        for node in [to, from, 3 - from - to] {
            ok(self.nodes[node]
                .command(&["CLUSTER", "SETSLOT", slot, "NODE", &to_id])
                .await);
        }
    }
}
