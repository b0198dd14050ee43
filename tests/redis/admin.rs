//! Admin actions across hosts sharing one Redis: a listing on any host shows every
//! host's streams; a disconnect or revocation asked of one host applies on all, and a
//! host started later knows the revocations.

use serde_json::json;
use sse_tests::node::Node;
use sse_tests::sse::Frame;
use sse_tests::*;

use super::two_nodes;

/// Reads a stream to its end; true when it ended with `closing` (`revoked`).
async fn ended_revoked(s: &mut SseStream) -> bool {
    let events = s.until_end().await;
    events
        .last()
        .is_some_and(|e| e.event == "closing" && e.json()["reason"] == "revoked")
        && s.seen.contains(&Frame::Retry(86_400_000))
}

#[tokio::test]
async fn an_admin_on_one_host_sees_and_cuts_streams_on_every_host() {
    let (redis, a, b) = two_nodes().await;
    let (mut ann, ann_id) = b.stream_of("acme", "ann", "t-ann").await;
    let (_bob, bob_id) = a.stream_of("acme", "bob", "t-bob").await;
    let (mut leaked, _) = b.stream_of("acme", "cat", "t-leaked").await;
    let admin = token("acme", "ADMIN");
    let listing = a.get_json("/sse/admin/connections", &admin).await;
    let hosts = listing["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{listing}");
    assert!(hosts.iter().all(|h| h["answered"] == true), "{listing}");
    assert_eq!(listing["totalConnections"], 3);
    let ids: Vec<&str> = listing["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&ann_id.as_str()) && ids.contains(&bob_id.as_str()),
        "{listing}"
    );
    assert_eq!(listing["connectionsByHost"].as_object().unwrap().len(), 2);

    // Disconnect by subject, asked of the other host.
    let (status, body) = a
        .post_json("/sse/admin/disconnect", &admin, &json!({"subject": "ann"}))
        .await;
    assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)), "{body}");
    assert!(ended_revoked(&mut ann).await);

    // Revoke a token in use on B, asked of A: B cuts it and refuses it.
    let (status, body) = a
        .post_json("/sse/admin/revoke", &admin, &json!({"jti": "t-leaked"}))
        .await;
    assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)), "{body}");
    assert!(ended_revoked(&mut leaked).await);
    let reused = token_with(
        json!({"sub": "cat", "company_id": "acme", "role": "VIEWER", "jti": "t-leaked"}),
        600,
    );
    let res = b.open_stream(&reused, "acme", &["dashboard-updates"], None).await;
    assert_eq!(res.status(), 401);

    // A host that starts later loads the revocations from Redis.
    let c = Node::start(&redis.url(), "").await;
    let res = c.open_stream(&reused, "acme", &["dashboard-updates"], None).await;
    assert_eq!(res.status(), 401, "log:\n{}", c.log());
    let listed = c.get_json("/sse/admin/connections", &admin).await;
    assert_eq!(listed["revocations"][0]["jti"], "t-leaked");
}
