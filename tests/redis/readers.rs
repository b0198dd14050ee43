//! `redis.readers`: a host's companies are shared among several readers, each on its own
//! connection; every company's events still arrive once, in order.

use serde_json::json;
use sse_tests::node::Node;
use sse_tests::redis::RedisServer;
use sse_tests::*;

use super::read_ids;

#[tokio::test]
async fn companies_shared_among_three_blocking_readers_each_get_their_events_in_order() {
    shared_among_readers("readers = 3\nreader = \"blocking\"").await;
}

#[tokio::test]
async fn readers_waiting_on_announcements_on_one_redis_get_every_event_in_order() {
    // A one-minute tick: within the patience, events come through the announcements.
    shared_among_readers("readers = 2\nreader = \"announced\"\nblock_ms = 60000").await;
}

async fn shared_among_readers(redis_extra: &str) {
    let redis = RedisServer::start().await;
    let node = Node::start_with_redis(&redis.url(), redis_extra).await;
    let other = Node::start(&redis.url(), "").await;
    let companies: Vec<String> = (0..9).map(|i| format!("co-{i}")).collect();
    let mut streams = Vec::new();
    for c in &companies {
        streams.push(
            node.stream_as(&token(c, "VIEWER"), c, &["dashboard-updates"], None)
                .await,
        );
    }
    let readers = if redis_extra.contains("readers = 3") { 3 } else { 2 };
    assert_eq!(node.stats().await["backend"]["readers"], readers);
    // A reader reports what it follows once it took the adoption in (a stream is open
    // as soon as it was adopted): wait for it rather than race it.
    super::wait_backend(&node, "every company followed", |b| b["followedCompanies"] == 9).await;
    for round in 0..3 {
        for (c, s) in companies.iter().zip(&mut streams) {
            let id = other
                .publish(c, "dashboard-updates", "update", json!({"round": round}))
                .await;
            assert_eq!(read_ids(s, 1).await, vec![id], "{c}, round {round}");
        }
    }
}
