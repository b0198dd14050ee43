//! `Idempotency-Key` on `POST /sse/publish`: a retried publish is stored once, a key
//! reused for other events is refused, keys are per company, bad keys get 400. The
//! Redis backend's twin is `tests/redis/idempotency.rs`.

use serde_json::{json, Value};
use sse_tests::*;

async fn publish(host: &HostClient, token: &str, keys: &[&str], body: &Value) -> (u16, Value, bool) {
    host.publish_keyed(token, keys, body).await
}

/// One event of `company` on the dashboard channel.
fn event(company: &str, n: u64) -> Value {
    json!({"companyId": company, "channel": "dashboard-updates", "type": "update", "data": {"n": n}})
}

/// The events of the next `n` live frames after `connected`.
async fn ids_on(s: &mut SseStream, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = s.next_event().await;
        if e.event != "connected" {
            out.push(e.id.expect("live events have IDs"));
        }
    }
    out
}

#[tokio::test]
async fn a_retried_publish_is_stored_and_delivered_once() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    let publisher = token("acme", "PUBLISHER");
    let (status, first, replayed) = publish(&host, &publisher, &["order-17"], &event("acme", 1)).await;
    assert_eq!((status, replayed), (200, false));
    let (status, again, replayed) = publish(&host, &publisher, &["order-17"], &event("acme", 1)).await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again["id"], first["id"], "the retry gets the first publish's ID");
    // A marker published after: the stream's next two events are the first publish and
    // the marker, nothing in between.
    let marker = host.publish("acme", "dashboard-updates", "marker", json!(0)).await;
    assert_eq!(
        ids_on(&mut s, 2).await,
        vec![first["id"].as_str().unwrap().to_owned(), marker]
    );
    assert_eq!(host.stats().await["counters"]["published"], 2);
}

#[tokio::test]
async fn batches_replay_all_their_ids_and_concurrent_retries_store_once() {
    let host = TestHost::start().await;
    let publisher = token("acme", "PUBLISHER");
    let batch = json!({"events": [event("acme", 1), event("acme", 2), event("acme", 3)]});
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let req = host
            .client
            .post(host.url("/sse/publish"))
            .bearer_auth(&publisher)
            .header("idempotency-key", "batch-1")
            .json(&batch);
        set.spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let replayed = res.headers().contains_key("idempotent-replayed");
            (status, res.json::<Value>().await.unwrap(), replayed)
        });
    }
    let replies = set.join_all().await;
    let first = &replies[0].1["ids"];
    assert_eq!(first.as_array().map(Vec::len), Some(3));
    for (status, body, _) in &replies {
        assert_eq!((*status, &body["ids"]), (200, first));
    }
    assert_eq!(replies.iter().filter(|r| !r.2).count(), 1, "exactly one stored");
    assert_eq!(host.stats().await["counters"]["published"], 3);
}

#[tokio::test]
async fn a_key_reused_for_other_events_is_refused_and_stores_nothing() {
    let host = TestHost::start().await;
    let publisher = token("acme", "PUBLISHER");
    let (status, _, _) = publish(&host, &publisher, &["k"], &event("acme", 1)).await;
    assert_eq!(status, 200);
    let (status, err, _) = publish(&host, &publisher, &["k"], &event("acme", 2)).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")));
    assert_eq!(host.stats().await["counters"]["published"], 1);
}

#[tokio::test]
async fn keys_are_per_company_so_no_tenant_sees_or_blocks_another() {
    let host = TestHost::start().await;
    let (acme, globex) = (token("acme", "PUBLISHER"), token("globex", "PUBLISHER"));
    let (_, a, _) = publish(&host, &acme, &["shared-key"], &event("acme", 1)).await;
    // The same key and even the same events' shape from another company: its own publish.
    let (status, g, replayed) = publish(&host, &globex, &["shared-key"], &event("globex", 1)).await;
    assert_eq!((status, replayed), (200, false));
    assert_ne!(g["id"], a["id"], "another company never gets acme's IDs");
    let (status, again, replayed) = publish(&host, &acme, &["shared-key"], &event("acme", 1)).await;
    assert_eq!((status, replayed, &again["id"]), (200, true, &a["id"]));
    // A super admin publishing for acme shares acme's keys (the key is the company's).
    let root = token("root", "SUPER_ADMIN");
    let (status, r, replayed) = publish(&host, &root, &["shared-key"], &event("acme", 1)).await;
    assert_eq!((status, replayed, &r["id"]), (200, true, &a["id"]));
}

#[tokio::test]
async fn malformed_or_repeated_keys_get_400_and_store_nothing() {
    let host = TestHost::start().await;
    let publisher = token("acme", "PUBLISHER");
    let long = "k".repeat(256);
    for keys in [
        vec![""],
        vec!["has space"],
        vec![long.as_str()],
        vec!["a", "b"],
        vec!["a", "a"],
    ] {
        let (status, err, _) = publish(&host, &publisher, &keys, &event("acme", 1)).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("INVALID_REQUEST")),
            "{keys:?}"
        );
    }
    let (status, _, _) = publish(&host, &publisher, &[&"k".repeat(255)], &event("acme", 1)).await;
    assert_eq!(status, 200, "255 characters is the limit");
    assert_eq!(host.stats().await["counters"]["published"], 1);
}

#[tokio::test]
async fn the_embedded_wasm_edge_passes_the_key_and_a_retry_is_stored_once() {
    let host = TestHost::start_with(wasm_config()).await;
    let publisher = token("acme", "PUBLISHER");
    let (status, first, _) = publish(&host, &publisher, &["w-1"], &event("acme", 1)).await;
    assert_eq!(status, 200, "{first}");
    let (status, again, replayed) = publish(&host, &publisher, &["w-1"], &event("acme", 1)).await;
    assert_eq!((status, replayed, &again["id"]), (200, true, &first["id"]));
    assert_eq!(host.stats().await["counters"]["published"], 1);
}

#[tokio::test]
async fn replays_do_not_spend_the_publish_rate() {
    let mut cfg = config(false);
    cfg.publish.rate_per_sec = 0.001;
    cfg.publish.burst = 2.0;
    let host = TestHost::start_with(cfg).await;
    let publisher = token("acme", "PUBLISHER");
    let (status, first, _) = publish(&host, &publisher, &["r-1"], &event("acme", 1)).await;
    assert_eq!(status, 200);
    // A retrying publisher would otherwise run into 429 and give up on a stored publish.
    for _ in 0..5 {
        let (status, again, replayed) = publish(&host, &publisher, &["r-1"], &event("acme", 1)).await;
        assert_eq!((status, replayed, &again["id"]), (200, true, &first["id"]));
    }
    let (status, _, _) = publish(&host, &publisher, &["r-2"], &event("acme", 2)).await;
    assert_eq!(status, 200, "one token was left");
    let (status, err, _) = publish(&host, &publisher, &["r-3"], &event("acme", 3)).await;
    assert_eq!((status, err["error"].as_str()), (429, Some("RATE_LIMITED")));
}
