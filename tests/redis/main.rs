//! The Redis Streams backend with a real `redis-server` and real `sse-host` processes:
//! fan-out and resume across nodes, cluster-wide limits with lease expiry, Redis loss
//! and restart, history trimming.

mod admin;
mod cluster;
mod failure;
mod history;
mod idempotency;
mod on_cluster;
mod readers;
mod replicas;
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

/// Opens an acme viewer's dashboard stream on `node` (resuming after `last_id`), retrying
/// while it is refused for want of a slot (429) until `deadline`: for slots that come
/// back asynchronously (a lease expiring, a release written, counts rewritten). Fails
/// with `what` past the deadline, and on any other status.
pub async fn open_when_free(
    node: &Node,
    last_id: Option<&str>,
    deadline: tokio::time::Instant,
    what: &str,
) -> reqwest::Response {
    let viewer = sse_tests::token("acme", "VIEWER");
    loop {
        let res = node.open_stream(&viewer, "acme", &["dashboard-updates"], last_id).await;
        match res.status().as_u16() {
            200 => return res,
            429 => assert!(tokio::time::Instant::now() < deadline, "{what}"),
            other => panic!("{what}: unexpected {other}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
