use sse_tests::*;

#[tokio::test]
async fn shutdown_ends_streams_with_a_short_retry_and_stops() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    s.next_event().await;
    let state = host.state.clone();
    let stopping = tokio::spawn(host.stop());
    let rest = s.until_end().await;
    assert_eq!(
        rest.last().map(|e| e.json()["reason"].clone()),
        Some(serde_json::json!("shutdown"))
    );
    assert!(
        s.seen.contains(&Frame::Retry(500)),
        "short retry so clients move on quickly: {:?}",
        s.seen
    );
    assert!(state.is_draining());
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("drained within the grace period")
        .unwrap();
    assert_eq!(state.broker.stats().hub.total_connections, 0);
}

#[tokio::test]
async fn draining_host_refuses_new_streams_and_is_not_ready() {
    let host = TestHost::start().await;
    host.state.begin_drain();
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "UNAVAILABLE");
    let ready = host.client.get(host.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health = host.client.get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "alive while draining");
}
