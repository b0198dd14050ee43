//! Redis is storage shared with other clients, not a trusted publisher: entries someone
//! else wrote into our streams never reach a browser as injected SSE fields.

use sse_tests::redis::RedisServer;
use sse_tests::Frame;

use crate::two_nodes;

/// Writes an entry straight into acme's dashboard stream, as a hostile or buggy client
/// of the same Redis could.
async fn forge(redis: &RedisServer, kind: &str, data: &str) {
    let reply = redis
        .command(&["XADD", "sse:{acme}:ch:dashboard-updates", "*", "t", kind, "d", data])
        .await;
    assert!(reply.starts_with('$'), "XADD: {reply}");
}

#[tokio::test]
async fn forged_stream_entries_are_skipped_live_and_on_replay() {
    let (redis, a, b) = two_nodes().await;
    let mut live = a.stream("acme", &["dashboard-updates"]).await;
    let connected = live.next_event().await;
    let from = connected.json()["lastEventId"].as_str().unwrap().to_owned();
    forge(&redis, "update\nevent: forged\ndata: {\"evil\":1}", "{}").await;
    forge(&redis, "update", "{}\n\nevent: forged\ndata: 1").await;
    forge(&redis, "update\rid: 0-1", "{}").await;
    let real = a
        .publish("acme", "dashboard-updates", "update", serde_json::json!({"real": true}))
        .await;
    // Live: the first event after the forgeries is the real one, nothing in between.
    let e = live.next_event().await;
    assert_eq!(
        (e.id.as_deref(), e.event.as_str()),
        (Some(real.as_str()), "update"),
        "{:?}",
        live.seen
    );
    // Replay on the other node, from before the forgeries: the same.
    let mut resumed = b
        .stream_as(
            &sse_tests::token("acme", "VIEWER"),
            "acme",
            &["dashboard-updates"],
            Some(&from),
        )
        .await;
    let mut events = Vec::new();
    while events.len() < 2 {
        if let Some(Frame::Event(e)) = resumed.next_frame().await {
            events.push(e);
        }
    }
    assert_eq!(events[0].event, "connected");
    assert_eq!(
        (events[1].id.as_deref(), events[1].event.as_str()),
        (Some(real.as_str()), "update")
    );
    let frames = format!("{:?}{:?}", live.seen, resumed.seen);
    assert!(!frames.contains("forged") && !frames.contains("evil"), "{frames}");
}

#[tokio::test]
async fn a_foreign_entry_ahead_of_our_ids_cannot_block_publishing() {
    let (redis, a, _b) = two_nodes().await;
    let mut live = a.stream("acme", &["dashboard-updates"]).await;
    live.next_event().await;
    // Another client of the same Redis adds an entry far ahead of any ID we would make.
    let reply = redis
        .command(&[
            "XADD",
            "sse:{acme}:ch:dashboard-updates",
            "99999999999999-5",
            "t",
            "update",
            "d",
            "{}",
        ])
        .await;
    assert!(reply.starts_with('$'), "XADD: {reply}");
    let real = a
        .publish("acme", "dashboard-updates", "update", serde_json::json!({"real": true}))
        .await;
    assert_eq!(
        crate::order(&real),
        (99_999_999_999_999, 6),
        "our IDs continue above it"
    );
    // (The foreign entry is well formed, so it is delivered too: whoever can write Redis
    // can publish. Ours follows it.)
    while live.next_event().await.id.as_deref() != Some(real.as_str()) {}
}

#[tokio::test]
async fn entries_another_client_wrote_do_not_pass_for_history_going_back() {
    // One entry per read: each read that takes a forged entry is cut short and followed
    // by another from above it, while the company's last ID (only publishes move it)
    // stays below. That is not a rollback: nobody is reset.
    let redis = RedisServer::start().await;
    let node = sse_tests::node::Node::start_with_redis(&redis.url(), "read_count = 1").await;
    let mut first = node.stream("acme", &["dashboard-updates"]).await;
    let connected = first.next_event().await;
    // Explicit IDs above the head the client was given (`*` could take that very ID
    // when written in the same millisecond).
    let head = connected.json()["lastEventId"].as_str().unwrap().to_owned();
    let ms: u64 = head.split_once('-').unwrap().0.parse().unwrap();
    for seq in 0..2 {
        let id = format!("{}-{seq}", ms + 1);
        let reply = redis
            .command(&["XADD", "sse:{acme}:ch:dashboard-updates", &id, "t", "update", "d", "{}"])
            .await;
        assert!(reply.contains(&id), "XADD: {reply}");
    }
    // A second subscriber makes the reader read the company (and the forged entries).
    let mut second = node.stream("acme", &["dashboard-updates"]).await;
    assert_eq!(second.next_event().await.event, "connected");
    // Both get both entries (well-formed entries another client wrote are delivered like
    // any other). Were the cut above the last ID taken for a rollback, the second read
    // would be dropped and both streams reset at the next tick instead.
    for s in [&mut first, &mut second] {
        for _ in 0..2 {
            let e = s.next_event().await;
            assert_eq!((e.event.as_str(), e.data.as_str()), ("update", "{}"), "{:?}", s.seen);
        }
    }
    let real = node
        .publish("acme", "dashboard-updates", "update", serde_json::json!({"real": true}))
        .await;
    for s in [&mut first, &mut second] {
        let e = s.next_event().await;
        assert_eq!(e.id.as_deref(), Some(real.as_str()), "{:?}", s.seen);
    }
}
