//! The Redis Streams backend with a real `redis-server` and real `sse-host` processes:
//! fan-out and resume across nodes, cluster-wide limits with lease expiry, Redis loss
//! and restart, history trimming.

mod cluster;
mod failure;
mod history;
mod untrusted;

use serde_json::{json, Value};
use sse_tests::node::Node;
use sse_tests::redis::RedisServer;
use sse_tests::SseStream;

/// A fresh in-memory Redis and two nodes on it (keep the Redis alive with the nodes).
pub async fn two_nodes() -> (RedisServer, Node, Node) {
    let redis = RedisServer::start().await;
    let a = Node::start(&redis.url(), "").await;
    let b = Node::start(&redis.url(), "").await;
    (redis, a, b)
}

/// Publishes `n` events to `channel` through `node`; returns their IDs.
pub async fn publish_n(node: &Node, channel: &str, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            node.publish("acme", channel, "update", json!({"tag": tag, "n": i}))
                .await,
        );
    }
    ids
}

/// Reads `n` events (skipping `connected`) and returns their IDs.
pub async fn read_ids(s: &mut SseStream, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let e = s.next_event().await;
        if e.event == "connected" {
            continue;
        }
        assert_eq!(e.event, "update", "unexpected event {e:?}");
        ids.push(e.id.expect("events carry IDs"));
    }
    ids
}

/// Waits until a node's `/sse/stats` satisfies `cond`.
pub async fn wait_backend(node: &Node, what: &str, cond: impl Fn(&Value) -> bool) {
    node.wait_for_stats(what, |s| cond(&s["backend"])).await;
}

/// `(ms, seq)` of an ID, to check order.
pub fn order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("ms-seq");
    (ms.parse().unwrap(), seq.parse().unwrap())
}
