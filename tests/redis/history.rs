//! History in Redis: trimming to the configured size, and the resets it implies.

use serde_json::json;
use sse_tests::node::Node;
use sse_tests::redis::RedisServer;
use sse_tests::token;

#[tokio::test]
async fn ids_older_than_the_trimmed_history_get_reset_and_recent_ones_replay_exactly() {
    let redis = RedisServer::start().await;
    let a = Node::start(&redis.url(), "[history]\nsize = 10\n").await;
    // Redis trims whole radix-tree nodes (100 entries): publish enough to drop some.
    let events: Vec<_> = (0..300)
        .map(|n| json!({"companyId": "acme", "channel": "dashboard-updates", "type": "update", "data": n}))
        .collect();
    let res = a
        .client
        .post(a.url("/sse/publish"))
        .bearer_auth(token("acme", "PUBLISHER"))
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ids: Vec<String> = res.json::<serde_json::Value>().await.unwrap()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let viewer = token("acme", "VIEWER");

    let mut s = a
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&ids[0]))
        .await;
    assert_eq!(s.next_event().await.event, "connected");
    let reset = s.next_event().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.json()["reason"], "too_old");
    assert_eq!(reset.id.as_deref(), Some(ids[299].as_str()), "continue from the head");

    let mut s = a
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&ids[295]))
        .await;
    assert_eq!(s.next_event().await.event, "connected");
    for id in &ids[296..] {
        assert_eq!(s.next_event().await.id.as_ref(), Some(id), "recent IDs replay exactly");
    }

    for (bad, reason) in [
        ("not-an-id", "unknown_id"),
        ("99999999999999-0", "unknown_id"),
        ("1-0", "too_old"),
    ] {
        let mut s = a.stream_as(&viewer, "acme", &["dashboard-updates"], Some(bad)).await;
        assert_eq!(s.next_event().await.event, "connected");
        let e = s.next_event().await;
        assert_eq!(
            (e.event.as_str(), e.json()["reason"].as_str()),
            ("reset", Some(reason)),
            "{bad}"
        );
    }

    let poll = a
        .get_json(
            &format!("/sse/poll?companyId=acme&channel=dashboard-updates&since={}", ids[0]),
            &viewer,
        )
        .await;
    assert_eq!(poll["reset"], true);
    assert_eq!(poll["next"], ids[299].as_str());
}

#[tokio::test]
async fn a_long_poll_on_one_node_wakes_for_a_publish_on_another() {
    let (_redis, a, b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let head = a
        .get_json("/sse/poll?companyId=acme&channel=dashboard-updates", &viewer)
        .await;
    let since = head["next"].as_str().unwrap().to_owned();
    let waiting = tokio::spawn({
        let url = a.url(&format!(
            "/sse/poll?companyId=acme&channel=dashboard-updates&since={since}&wait=20"
        ));
        let client = a.client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(viewer)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    });
    // Publish until the waiting poll has answered (it may not be registered yet at first).
    let mut published = Vec::new();
    while !waiting.is_finished() {
        published.push(
            b.publish("acme", "dashboard-updates", "update", json!(published.len()))
                .await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(published.len() < 200, "the long poll never woke");
    }
    let got = waiting.await.unwrap();
    let events = got["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert_eq!(events[0]["id"], published[0].as_str(), "starts right after `since`");
}
