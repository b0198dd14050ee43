//! A master with two replicas behind three Sentinels, all real `redis-server`s on loopback
//! (a Sentinel is `redis-server --sentinel`: Debian's `redis-sentinel` is the same binary).

use std::time::Duration;

use super::RedisServer;
use crate::PATIENCE;

/// The name the Sentinels know the master by.
pub const MASTER_NAME: &str = "sse";

/// A master, two replicas and three Sentinels (quorum 2), every process stopped on drop.
pub struct RedisSentinels {
    /// The first master, then its replicas (Sentinel may promote any of them).
    pub servers: Vec<RedisServer>,
    pub sentinels: Vec<RedisServer>,
}

impl RedisSentinels {
    /// Starts them; returns once every Sentinel knows both replicas and the other two
    /// Sentinels (until then a failover could not be agreed on).
    pub async fn start() -> Self {
        let master = RedisServer::start().await;
        let replicas = [master.start_replica().await, master.start_replica().await];
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(RedisServer::start_sentinel(&master, MASTER_NAME, 2).await);
        }
        let set = Self {
            servers: [master].into_iter().chain(replicas).collect(),
            sentinels,
        };
        let ready = format!(
            "name={MASTER_NAME},status=ok,address=127.0.0.1:{},slaves=2,sentinels=3",
            set.servers[0].port
        );
        let deadline = tokio::time::Instant::now() + 2 * PATIENCE;
        for s in &set.sentinels {
            loop {
                let info = s.command(&["INFO", "sentinel"]).await;
                if info.contains(&ready) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the Sentinels never found each other: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        set
    }

    /// The `[redis]` keys naming the master through the Sentinels (`url` holds its name).
    pub fn toml(&self) -> String {
        let list: Vec<String> = self.sentinels.iter().map(|s| format!("\"{}\"", s.url())).collect();
        format!("url = \"redis://{MASTER_NAME}\"\nsentinels = [{}]", list.join(", "))
    }

    /// Which of `servers` every Sentinel names as master now, once they agree and that
    /// server says it is master.
    pub async fn master(&self) -> usize {
        let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
        loop {
            if let Some(i) = self.agreed_master().await {
                let server = &self.servers[i];
                if server.ping().await && server.command(&["ROLE"]).await.contains("$6\r\nmaster") {
                    return i;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Sentinels never agreed on a master"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the Sentinels name a master other than `old` (after a failover).
    pub async fn master_other_than(&self, old: usize) -> usize {
        let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
        loop {
            let now = self.master().await;
            if now != old {
                return now;
            }
            assert!(tokio::time::Instant::now() < deadline, "no failover happened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn agreed_master(&self) -> Option<usize> {
        let mut named = None;
        for s in &self.sentinels {
            if !s.ping().await {
                continue; // a Sentinel a test stopped
            }
            let reply = s.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]).await;
            let port: u16 = reply.split("\r\n").nth(4)?.parse().ok()?;
            let i = self.servers.iter().position(|r| r.port == port)?;
            if named.is_some_and(|n| n != i) {
                return None;
            }
            named = Some(i);
        }
        named
    }
}
