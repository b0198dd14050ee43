//! Standalone Redis behind Sentinel: hosts name the Sentinels, never the master, and
//! follow a failover without a restart; with `min_replicas_ack` no acknowledged event is
//! lost when the master dies.

use std::time::Duration;

use serde_json::{json, Value};
use sse_tests::node::Node;
use sse_tests::redis::RedisSentinels;
use sse_tests::*;

const STREAM_KEY: &str = "sse:{acme}:ch:dashboard-updates";

fn event(n: u32) -> Value {
    json!({"companyId": "acme", "channel": "dashboard-updates", "type": "update", "data": {"n": n}})
}

/// A host that knows only the Sentinels (its `[redis]` has no address of a server).
async fn host(set: &RedisSentinels, extra: &str) -> Node {
    Node::start_with_redis("", &format!("{}\n{extra}", set.toml())).await
}

#[tokio::test]
async fn a_master_killed_behind_sentinel_loses_no_acknowledged_event() {
    let mut set = RedisSentinels::start().await;
    let a = host(&set, "min_replicas_ack = 1\nmin_replicas_timeout_ms = 1000").await;
    let b = host(
        &set,
        "min_replicas_ack = 1\nmin_replicas_timeout_ms = 1000\nreader = \"announced\"",
    )
    .await;
    // Clients stay connected through the failover on both hosts (both readers).
    let mut live = Vec::new();
    for node in [&a, &b] {
        let mut s = node.stream("acme", &["dashboard-updates"]).await;
        assert_eq!(s.next_event().await.event, "connected");
        live.push(s);
    }
    let publisher = token("acme", "PUBLISHER");
    // Publish 20 events one by one through A, each retried with its key until
    // acknowledged; kill the master (SIGKILL) after the 8th. The Sentinels agree it is
    // down and promote the replica that has the most; the other replica follows it.
    let mut acked = Vec::new();
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    let old = set.master().await;
    for n in 0..20 {
        if n == 8 {
            set.servers[old].kill();
        }
        acked.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &event(n), deadline).await);
    }
    let new = set.master_other_than(old).await;
    for s in &mut live {
        crate::no_gap_without_reset(s, &acked).await;
    }
    // Every acknowledged event is on the new master, once each, in order...
    let stored = set.servers[new].command(&["XLEN", STREAM_KEY]).await;
    assert_eq!(stored.trim(), format!(":{}", acked.len()), "stored on the new master");
    // ...and a client that saw the first resumes on a host started after the failover.
    let c = host(&set, "").await;
    let mut resumed = c
        .stream_as(
            &token("acme", "VIEWER"),
            "acme",
            &["dashboard-updates"],
            Some(&acked[0]),
        )
        .await;
    assert_eq!(crate::read_ids(&mut resumed, acked.len() - 1).await, acked[1..]);
    for node in [&a, &b] {
        following(node, &set.servers[new]).await;
    }
}

/// Waits until `node` says it follows `master`, having changed masters once.
async fn following(node: &Node, master: &sse_tests::redis::RedisServer) {
    let addr = format!("127.0.0.1:{}", master.port);
    crate::wait_backend(node, "the host follows the new master", |b| {
        b["sentinel"]["master"] == addr.as_str() && b["sentinel"]["switches"] == 1
    })
    .await;
}

#[tokio::test]
async fn a_switchover_moves_every_host_to_the_new_master_without_a_restart() {
    let set = RedisSentinels::start().await;
    let a = host(&set, "").await;
    let b = host(&set, "reader = \"announced\"").await;
    let mut live = Vec::new();
    for node in [&a, &b] {
        let mut s = node.stream("acme", &["dashboard-updates"]).await;
        assert_eq!(s.next_event().await.event, "connected");
        live.push(s);
    }
    let publisher = token("acme", "PUBLISHER");
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    let mut acked = Vec::new();
    for n in 0..5 {
        acked.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &event(n), deadline).await);
    }
    // Both replicas have them before the switch: the one promoted starts with all five.
    let old = set.master().await;
    for (i, server) in set.servers.iter().enumerate().filter(|(i, _)| *i != old) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while server.command(&["XLEN", STREAM_KEY]).await.trim() != ":5" {
            assert!(tokio::time::Instant::now() < deadline, "replica {i} never caught up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // An operator's switchover: the old master stays up, demoted to a replica (Sentinel
    // drops its clients as it does). The hosts follow by asking the Sentinels again.
    let reply = set.sentinels[0]
        .command(&["SENTINEL", "FAILOVER", sse_tests::redis::SENTINEL_MASTER])
        .await;
    assert!(reply.starts_with("+OK"), "{reply}");
    let new = set.master_other_than(old).await;
    // The Sentinels announced it; both hosts move (readers included) without a failure.
    for node in [&a, &b] {
        following(node, &set.servers[new]).await;
    }
    for n in 5..10 {
        acked.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &event(n), deadline).await);
    }
    // Nothing was lost and nothing reset: both hosts' clients got all ten, in order.
    for s in &mut live {
        let seen = crate::no_gap_without_reset(s, &acked).await;
        assert_eq!(seen, acked, "every event, no reset");
    }
    let stored = set.servers[new].command(&["XLEN", STREAM_KEY]).await;
    assert_eq!(
        stored.trim(),
        ":10",
        "the publishes after the switch went to the new master"
    );
    // (The old master may still call itself master here: Sentinel demotes it when it next
    // looks, seconds later. The hosts moved on the announcement, not on that.)
}
