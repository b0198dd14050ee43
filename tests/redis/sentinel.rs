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

/// A client connected to each host (each reconnects where a `reset` tells it to).
async fn watchers<'a>(nodes: [&'a Node; 2]) -> Vec<crate::Watcher<'a>> {
    let mut live = Vec::new();
    for node in nodes {
        let mut stream = node.stream("acme", &["dashboard-updates"]).await;
        assert_eq!(stream.next_event().await.event, "connected");
        live.push(crate::Watcher {
            node,
            company: "acme",
            stream,
        });
    }
    live
}

/// Two hosts on the Sentinels: A with the blocking reader, B with the announced one.
async fn both_readers(set: &RedisSentinels) -> (Node, Node) {
    (host(set, "reader = \"blocking\"").await, host(set, "").await)
}

/// A host that knows only the Sentinels (its `[redis]` has no address of a server).
async fn host(set: &RedisSentinels, extra: &str) -> Node {
    Node::start_with_redis("", &format!("{}\n{extra}", set.toml())).await
}

#[tokio::test]
async fn a_master_killed_behind_sentinel_loses_no_acknowledged_event() {
    let mut set = RedisSentinels::start().await;
    let a = host(
        &set,
        "min_replicas_ack = 1\nmin_replicas_timeout_ms = 1000\nreader = \"blocking\"",
    )
    .await;
    let b = host(&set, "min_replicas_ack = 1\nmin_replicas_timeout_ms = 1000").await;
    // Clients stay connected through the failover on both hosts (both readers).
    let mut live = watchers([&a, &b]).await;
    let publisher = token("acme", "PUBLISHER");
    // Three publishers at once through A, 8 events each, each retried with its key until
    // acknowledged; the master is killed (SIGKILL) once 8 are acknowledged, so publishes
    // are in flight: stored and delivered but not yet confirmed by a replica, or mid
    // WAIT. The Sentinels agree it is down and promote the replica that has the most;
    // the other replica follows it.
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    let old = set.master().await;
    let (count, counted) = tokio::sync::watch::channel(0usize);
    let publishing = |p: u32| {
        let (a, publisher, count) = (&a, &publisher, &count);
        async move {
            let mut acked = Vec::new();
            for n in 0..8 {
                let key = format!("p{p}-{n}");
                acked.push(crate::publish_until_acked(a, publisher, &key, &event(p * 100 + n), deadline).await);
                count.send_modify(|c| *c += 1);
            }
            acked
        }
    };
    let killing = async {
        let mut counted = counted;
        counted.wait_for(|c| *c >= 8).await.unwrap();
        set.servers[old].kill();
    };
    let (x, y, z, ()) = tokio::join!(publishing(0), publishing(1), publishing(2), killing);
    let mut acked: Vec<String> = [x, y, z].concat();
    acked.sort_by_key(|id| crate::order(id));
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

/// Waits until `node` says it follows `master`, having changed masters.
async fn following(node: &Node, master: &sse_tests::redis::RedisServer) {
    let addr = format!("127.0.0.1:{}", master.port);
    crate::wait_backend(node, "the host follows the new master", |b| {
        b["sentinel"]["master"] == addr.as_str() && b["sentinel"]["switches"].as_u64() >= Some(1)
    })
    .await;
}

#[tokio::test]
async fn a_switchover_moves_every_host_to_the_new_master_without_a_restart() {
    let mut set = RedisSentinels::start().await;
    let (a, b) = both_readers(&set).await;
    let mut live = watchers([&a, &b]).await;
    let publisher = token("acme", "PUBLISHER");
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    let mut acked = Vec::new();
    for n in 0..5 {
        acked.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &event(n), deadline).await);
    }
    // Both replicas have them before the switch: the one promoted starts with all five.
    let old = set.master().await;
    for (i, server) in set.servers.iter().enumerate().filter(|(i, _)| *i != old) {
        until_len(server, 5, i).await;
    }
    // An operator's switchover: the old master stays up, demoted to a replica (Sentinel
    // drops its clients as it does). The hosts follow by asking the Sentinels again.
    // The Sentinel the hosts ask first, and first follow, dies: they ask and follow the
    // others. The switchover goes through the last one.
    set.sentinels[0].kill();
    let reply = set.sentinels[2]
        .command(&["SENTINEL", "FAILOVER", sse_tests::redis::SENTINEL_MASTER])
        .await;
    assert!(reply.starts_with("+OK"), "{reply}");
    let new = set.master_other_than(old).await;
    // The Sentinels announced it; both hosts heard it and moved (readers included)
    // without any connection of theirs failing.
    for node in [&a, &b] {
        following(node, &set.servers[new]).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !node.log().contains("Sentinel switched the master") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no announcement heard:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

#[tokio::test]
async fn a_client_that_saw_an_event_the_new_master_lacks_gets_reset_though_history_grew_past_it() {
    let mut set = RedisSentinels::start().await;
    let (a, b) = both_readers(&set).await;
    let mut live = watchers([&a, &b]).await;
    let publisher = token("acme", "PUBLISHER");
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    let old = set.master().await;
    crate::publish_until_acked(&a, &publisher, "k0", &event(0), deadline).await;
    // Both replicas stall, their links cut: the next event is stored on the master (and
    // acknowledged: no min_replicas_ack) and delivered, but no replica has it.
    for (i, server) in set.servers.iter().enumerate().filter(|(i, _)| *i != old) {
        until_len(server, 1, i).await;
        server.pause();
    }
    assert!(set.servers[old]
        .command(&["CLIENT", "KILL", "TYPE", "replica"])
        .await
        .starts_with(':'));
    let lost = crate::publish_until_acked(&a, &publisher, "k1", &event(1), deadline).await;
    for s in &mut live {
        assert_eq!(crate::read_ids(&mut s.stream, 2).await[1], lost);
    }
    // The master dies; a replica is promoted without it, and new events take IDs past it.
    set.servers[old].kill();
    for (_, server) in set.servers.iter().enumerate().filter(|(i, _)| *i != old) {
        server.resume();
    }
    let mut after = Vec::new();
    for n in 2..5 {
        after.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &event(n), deadline).await);
    }
    assert!(
        crate::order(&after[0]) > crate::order(&lost),
        "history grew past the lost event"
    );
    // Each client saw an event the new master never had: `reset`, not a silent switch.
    for s in &mut live {
        let e = s.stream.next_event().await;
        assert_eq!(
            (e.event.as_str(), e.json()["reason"].clone()),
            ("reset", json!("unknown_id")),
            "{e:?}"
        );
    }
}

/// Waits until `server` holds `n` entries of the stream.
async fn until_len(server: &sse_tests::redis::RedisServer, n: usize, which: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.command(&["XLEN", STREAM_KEY]).await.trim() != format!(":{n}") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server {which} never had {n} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
