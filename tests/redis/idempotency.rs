//! `Idempotency-Key` on the Redis backend: the record lives in Redis, written by the
//! publish script with the events, so a retry on another node is stored once too.

use serde_json::json;
use sse_tests::node::Node;
use sse_tests::redis::RedisServer;
use sse_tests::token;

use crate::read_ids;

fn event(company: &str, n: u64) -> serde_json::Value {
    json!({"companyId": company, "channel": "dashboard-updates", "type": "update", "data": {"n": n}})
}

#[tokio::test]
async fn a_publish_retried_on_another_node_is_stored_and_delivered_once() {
    let (_redis, a, b) = crate::two_nodes().await;
    let publisher = token("acme", "PUBLISHER");
    let mut s = b
        .stream_as(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    let (status, first, replayed) = a.publish_keyed(&publisher, &["order-17"], &event("acme", 1)).await;
    assert_eq!((status, replayed), (200, false));
    let (status, again, replayed) = b.publish_keyed(&publisher, &["order-17"], &event("acme", 1)).await;
    assert_eq!((status, replayed, &again["id"]), (200, true, &first["id"]));
    let (status, err, _) = b.publish_keyed(&publisher, &["order-17"], &event("acme", 2)).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")));
    let marker = a.publish("acme", "dashboard-updates", "update", json!("marker")).await;
    assert_eq!(
        read_ids(&mut s, 2).await,
        vec![first["id"].as_str().unwrap().to_owned(), marker],
        "the event once, then the marker"
    );
    // Another company's identical key is its own.
    let globex = token("globex", "PUBLISHER");
    let (status, g, replayed) = a.publish_keyed(&globex, &["order-17"], &event("globex", 1)).await;
    assert_eq!((status, replayed), (200, false));
    assert_ne!(g["id"], first["id"]);
}

#[tokio::test]
async fn a_company_past_its_key_cap_forgets_its_oldest_key_first() {
    let redis = RedisServer::start().await;
    let node = Node::start(&redis.url(), "idempotency_keys_per_company = 2").await;
    let publisher = token("acme", "PUBLISHER");
    let mut ids = Vec::new();
    for (n, key) in ["k1", "k2", "k3"].into_iter().enumerate() {
        let (status, body, _) = node.publish_keyed(&publisher, &[key], &event("acme", n as u64)).await;
        assert_eq!(status, 200);
        ids.push(body["id"].clone());
    }
    let (_, k3, replayed) = node.publish_keyed(&publisher, &["k3"], &event("acme", 2)).await;
    assert_eq!((replayed, &k3["id"]), (true, &ids[2]), "a recent key is remembered");
    let (status, k1, replayed) = node.publish_keyed(&publisher, &["k1"], &event("acme", 0)).await;
    assert_eq!(
        (status, replayed),
        (200, false),
        "the oldest key was dropped at the cap"
    );
    assert_ne!(k1["id"], ids[0]);
    let (_, k2, replayed) = node.publish_keyed(&publisher, &["k2"], &event("acme", 1)).await;
    assert!(!replayed && k2["id"] != ids[1], "k2 went when k1 came back: {k2}");
}

#[tokio::test]
async fn the_cap_never_evicts_the_record_a_publish_just_wrote() {
    let redis = RedisServer::start().await;
    let node = Node::start(&redis.url(), "idempotency_keys_per_company = 1").await;
    let publisher = token("acme", "PUBLISHER");
    // Keys in falling name order, back to back: records of one millisecond tie on
    // their score, and the lowest name would go first.
    for (n, key) in ["k9", "k8", "k7", "k6", "k5", "k4", "k3", "k2", "k1"]
        .into_iter()
        .enumerate()
    {
        let body = event("acme", n as u64);
        let (status, first, _) = node.publish_keyed(&publisher, &[key], &body).await;
        assert_eq!(status, 200);
        let (_, again, replayed) = node.publish_keyed(&publisher, &[key], &body).await;
        assert_eq!((replayed, &again["id"]), (true, &first["id"]), "{key} kept");
    }
}

#[tokio::test]
async fn a_tiers_publish_rate_holds_across_nodes_and_replays_spend_none() {
    let redis = RedisServer::start().await;
    let policy = sse_tests::tiered_policy(); // meter: a burst of 2, then 1 per 1000 s
    let a = Node::start_with_policy(&redis.url(), &policy).await;
    let b = Node::start_with_policy(&redis.url(), &policy).await;
    let publisher = token("meter", "PUBLISHER");
    let (status, first, _) = a.publish_keyed(&publisher, &["m-1"], &event("meter", 1)).await;
    assert_eq!(status, 200);
    for _ in 0..3 {
        let (status, again, replayed) = b.publish_keyed(&publisher, &["m-1"], &event("meter", 1)).await;
        assert_eq!((status, replayed, &again["id"]), (200, true, &first["id"]));
    }
    assert_eq!(b.publish_keyed(&publisher, &[], &event("meter", 2)).await.0, 200);
    let (status, err, _) = a.publish_keyed(&publisher, &[], &event("meter", 3)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (429, Some("RATE_LIMITED")),
        "two events spent the burst across both nodes"
    );
    let other = token("globex", "PUBLISHER");
    for n in 0..3 {
        assert_eq!(a.publish_keyed(&other, &[], &event("globex", n)).await.0, 200);
    }
}

#[tokio::test]
async fn a_retried_batch_gets_every_id_back_on_another_node() {
    let (_redis, a, b) = crate::two_nodes().await;
    let publisher = token("acme", "PUBLISHER");
    let batch = json!({"events": (0..50).map(|n| event("acme", n)).collect::<Vec<_>>()});
    let (status, first, _) = a.publish_keyed(&publisher, &["batch-1"], &batch).await;
    assert_eq!(status, 200);
    assert_eq!(first["ids"].as_array().map(Vec::len), Some(50));
    let (status, again, replayed) = b.publish_keyed(&publisher, &["batch-1"], &batch).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again["ids"], first["ids"], "the record rebuilds all 50 IDs");
}
