//! `redis.min_replicas_ack`: a publish is acknowledged only once that many replicas have
//! it, so a master lost right after loses no acknowledged event; without it, a client
//! whose history went back in time gets `reset`, never a silent gap.

use std::time::Duration;

use serde_json::{json, Value};
use sse_tests::node::Node;
use sse_tests::redis::RedisServer;
use sse_tests::*;

const STREAM_KEY: &str = "sse:{acme}:ch:dashboard-updates";

fn event(n: u32) -> Value {
    json!({"companyId": "acme", "channel": "dashboard-updates", "type": "update", "data": {"n": n}})
}

/// Waits until `server` answers `INFO replication` with `needle` in it.
async fn until_replication(server: &RedisServer, needle: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !server.command(&["INFO", "replication"]).await.contains(needle) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replication never showed {needle}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_publish_is_acknowledged_only_once_a_replica_has_it() {
    let master = RedisServer::start().await;
    let mut replica = master.start_replica().await;
    let node = Node::start_with_redis(&master.url(), "min_replicas_ack = 1\nmin_replicas_timeout_ms = 300").await;
    let publisher = token("acme", "PUBLISHER");
    let (status, body, _) = node.publish_keyed(&publisher, &["k-1"], &event(1)).await;
    assert_eq!(status, 200, "{body}");
    let first = body["id"].as_str().unwrap().to_owned();
    let on_replica = replica.command(&["XRANGE", STREAM_KEY, "-", "+"]).await;
    assert!(
        on_replica.contains(&first),
        "acknowledged means the replica has it: {on_replica}"
    );

    // No replica to confirm: stored on the master, but refused (503), not acknowledged.
    replica.kill();
    until_replication(&master, "connected_slaves:0").await;
    let (status, body, _) = node.publish_keyed(&publisher, &["k-2"], &event(2)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("NOT_REPLICATED")),
        "{body}"
    );

    // The replica is back: the publisher's retry (same key) stores nothing more, and is
    // acknowledged once the replica confirms.
    replica.restart().await;
    until_replication(&replica, "master_link_status:up").await;
    let (status, body, replayed) = node.publish_keyed(&publisher, &["k-2"], &event(2)).await;
    assert_eq!(status, 200, "{body}");
    assert!(replayed, "the retry stored nothing");
    let second = body["id"].as_str().unwrap();
    let on_replica = replica.command(&["XRANGE", STREAM_KEY, "-", "+"]).await;
    assert!(on_replica.contains(second), "{on_replica}");
}

#[tokio::test]
async fn a_failover_loses_no_acknowledged_event_and_a_rollback_resets_rather_than_skips() {
    let mut master = RedisServer::start().await;
    let replica = master.start_replica().await;
    let node = Node::start_with_redis(&master.url(), "min_replicas_ack = 1\nmin_replicas_timeout_ms = 300").await;
    let mut watching = node.stream("acme", &["dashboard-updates"]).await;
    assert_eq!(watching.next_event().await.event, "connected");
    let publisher = token("acme", "PUBLISHER");
    let mut acked = Vec::new();
    for n in 0..5 {
        let (status, body, _) = node.publish_keyed(&publisher, &[&format!("k{n}")], &event(n)).await;
        assert_eq!(status, 200, "{body}");
        acked.push(body["id"].as_str().unwrap().to_owned());
    }
    // The replica stalls: the next publish is stored on the master and delivered to the
    // watching client, but no replica confirms it, so it is not acknowledged.
    // (Stopped, and its link cut, so not even bytes in flight reach it later.)
    replica.pause();
    assert!(master
        .command(&["CLIENT", "KILL", "TYPE", "replica"])
        .await
        .starts_with(':'));
    let (status, _, _) = node.publish_keyed(&publisher, &["k5"], &event(5)).await;
    assert_eq!(status, 503, "not acknowledged without a replica's confirmation");
    let seen = crate::read_ids(&mut watching, 6).await;
    assert_eq!(seen[..5], acked[..]);
    let unacknowledged = seen[5].clone();
    // The master dies; the replica wakes up and is promoted, without that last event.
    master.kill();
    replica.resume();
    assert!(replica.command(&["REPLICAOF", "NO", "ONE"]).await.starts_with("+OK"));
    let after = Node::start(&replica.url(), "").await;
    let viewer = token("acme", "VIEWER");
    let mut s = after
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&acked[0]))
        .await;
    let got = crate::read_ids(&mut s, acked.len() - 1).await;
    assert_eq!(got, acked[1..], "every acknowledged event survived the failover");
    // The watching client saw an event the new master never had: resuming from it, it
    // gets `reset`, not a silent gap.
    let mut s = after
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&unacknowledged))
        .await;
    assert_eq!(s.next_event().await.event, "connected");
    let reset = s.next_event().await;
    assert_eq!(
        (reset.event.as_str(), reset.json()["reason"].clone()),
        ("reset", json!("unknown_id"))
    );
}
