//! `edge = "wasm"`: the host behind the real filter, embedded.

use serde_json::{json, Value};
use sse_tests::*;

fn slot_count(host: &TestHost, company: &str) -> u32 {
    let edge = host.state.edge.as_ref().expect("wasm edge");
    let value = edge
        .shared_data(0, &sse_policy::slots::shard_key(company))
        .unwrap_or_default();
    sse_policy::slots::count(&value, company)
}

async fn wait_slots(host: &TestHost, company: &str, n: u32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while slot_count(host, company) != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "filter slots for {company} stuck at {}",
            slot_count(host, company)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn browser_style_clients_stream_through_the_embedded_filter() {
    let host = TestHost::start_with(wasm_config()).await;
    // Like a native EventSource: the token in a cookie.
    let url = host.url("/sse/stream?companyId=acme&channel=dashboard-updates");
    let res = host
        .client
        .get(&url)
        .header("cookie", format!("sse_token={}", token("acme", "VIEWER")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut by_cookie = SseStream::new(res);
    assert_eq!(by_cookie.next_event().await.event, "connected");
    // Like our fetch-based client: the token in a header.
    let mut by_header = host.stream("acme", &["dashboard-updates"]).await;
    by_header.next_event().await;
    let id = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!({"v": 1}))
        .await;
    assert_eq!(by_cookie.next_event().await.id.as_ref(), Some(&id));
    assert_eq!(by_header.next_event().await.id, Some(id));
    assert_eq!(slot_count(&host, "acme"), 2);
}

#[tokio::test]
async fn the_embedded_filter_decides_exactly_like_the_native_edge() {
    let native = TestHost::start().await;
    let wasm = TestHost::start_with(wasm_config()).await;
    assert_same_decisions(&native.client, native.addr, wasm.addr, "native vs wasm").await;
}

#[tokio::test]
async fn filter_slots_return_on_client_abort_normal_end_and_upstream_error() {
    let mut cfg = wasm_config();
    cfg.hub.max_connections = 2; // the hub refuses the third stream after the filter admitted it
    let host = TestHost::start_with(cfg).await;
    let mut a = host.stream("acme", &["dashboard-updates"]).await;
    a.next_event().await;
    // Upstream error: the filter takes a slot, the hub answers 429, the slot comes back.
    let _b = host.stream("acme", &["dashboard-updates"]).await;
    let refused = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(refused.status(), 429);
    drop(refused);
    wait_slots(&host, "acme", 2).await;
    // Client abort.
    drop(a);
    wait_slots(&host, "acme", 1).await;
    drop(_b);
    wait_slots(&host, "acme", 0).await;
    // Normal end: the server ends the stream when the token expires.
    let short = token_with(json!({"sub": "t", "company_id": "acme", "role": "VIEWER"}), 2);
    let mut s = host.stream_as(&short, "acme", &["dashboard-updates"], None).await;
    assert_eq!(slot_count(&host, "acme"), 1);
    s.until_end().await;
    wait_slots(&host, "acme", 0).await;
    assert_eq!(host.state.edge.as_ref().unwrap().live_contexts(), 0);
}

#[tokio::test]
async fn a_failing_filter_answers_503_and_the_host_stays_up() {
    let mut cfg = wasm_config();
    let trap = wat_module("", "i32.const 1", "unreachable");
    let w = cfg.wasm.as_mut().unwrap();
    w.plugins.insert(
        0,
        sse_host::edge::PluginSpec {
            name: "broken".into(),
            module: trap,
            configuration: Vec::new(),
            upstream: None,
        },
    );
    let host = TestHost::start_with(cfg).await;
    for _ in 0..3 {
        let res = host
            .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
            .await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "UNAVAILABLE");
    }
    assert_eq!(
        host.client.get(host.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn a_body_is_read_only_for_a_request_the_filter_admitted() {
    let host = TestHost::start_with(wasm_config()).await;
    // A publish that announces a large body and never sends it: refused on its headers
    // (no valid token, or a role that may not publish), without waiting for the body.
    publishes_refused_before_their_body(host.addr).await;
    // An admitted publish's body is read, signed over and stored.
    let id = host.publish("acme", "dashboard-updates", "t", json!({"n": 1})).await;
    assert!(!id.is_empty());
}
