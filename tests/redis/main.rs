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
mod sentinel;
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

/// Publishes `body` with idempotency `key` through `node` until it is acknowledged,
/// retrying refusals (503: Redis unreachable or unreplicated, as during a failover) until
/// `deadline`; returns the event's ID.
pub async fn publish_until_acked(
    node: &Node,
    publisher: &str,
    key: &str,
    body: &Value,
    deadline: tokio::time::Instant,
) -> String {
    loop {
        let (status, reply, _) = node.publish_keyed(publisher, &[key], body).await;
        if status == 200 {
            return reply["id"].as_str().unwrap().to_owned();
        }
        assert_eq!(status, 503, "{reply}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failover: {reply}; log:\n{}",
            node.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A client's stream of `company`'s dashboard channel on a node, reopened where a
/// `reset` tells it to (a reset ends the stream; the browser client reconnects so).
pub struct Watcher<'a> {
    /// Where it reconnects.
    pub node: &'a Node,
    /// Whose stream it is.
    pub company: &'a str,
    /// The open stream.
    pub stream: SseStream,
}

/// Reads a client that stayed connected through a failover up to the last of `acked`:
/// events in order, none twice, and every acknowledged one after its last `reset` (a
/// reset is allowed: the new master may be behind what the client saw; the client then
/// reconnects from the reset's ID). Returns what it saw since that reset.
pub async fn no_gap_without_reset(live: &mut Watcher<'_>, acked: &[String]) -> Vec<String> {
    let last = acked.last().expect("events were published");
    let mut seen: Vec<String> = Vec::new();
    loop {
        let e = live.stream.next_event().await;
        match e.event.as_str() {
            "reset" => {
                seen.clear();
                let viewer = sse_tests::token(live.company, "VIEWER");
                live.stream = live
                    .node
                    .stream_as(&viewer, live.company, &["dashboard-updates"], e.id.as_deref())
                    .await;
            }
            "update" => {
                let id = e.id.unwrap();
                assert!(
                    seen.last().is_none_or(|prev| order(prev) < order(&id)),
                    "out of order or twice: {id} after {seen:?}"
                );
                let done = &id == last;
                seen.push(id);
                if done {
                    break;
                }
            }
            _ => {}
        }
    }
    let since_reset: Vec<&String> = acked.iter().filter(|id| order(id) >= order(&seen[0])).collect();
    assert_eq!(seen.iter().collect::<Vec<_>>(), since_reset, "a gap without a reset");
    seen
}
