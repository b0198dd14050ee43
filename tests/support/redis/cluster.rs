//! A Redis Cluster of real `redis-server`s on loopback.

use std::process::Command;
use std::time::Duration;

use super::RedisServer;
use crate::{free_port, PATIENCE};

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
        Self::start_with_node_timeout(2000).await
    }

    /// [`RedisCluster::start`] with another `cluster-node-timeout` (how long a master may
    /// not answer before the cluster fails it over), in ms.
    pub async fn start_with_node_timeout(node_timeout_ms: u32) -> Self {
        let node_timeout = node_timeout_ms.to_string();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let bus = free_port().to_string();
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &node_timeout,
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
        self.seeds_toml_without(usize::MAX)
    }

    /// The same without node `left_out` (a host then never subscribes there).
    pub fn seeds_toml_without(&self, left_out: usize) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != left_out)
            .map(|(_, n)| format!("\"{}\"", n.url()))
            .collect();
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
