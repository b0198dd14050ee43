use serde_json::json;
use sse_tests::*;

#[tokio::test]
async fn stream_starts_with_retry_and_connected_then_delivers_live_events() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    assert_eq!(s.next_frame().await, Some(Frame::Retry(3000)));
    let connected = s.next_event().await;
    assert_eq!(connected.event, "connected");
    let info = connected.json();
    assert_eq!(info["companyId"], "acme");
    assert_eq!(info["channels"], json!(["dashboard-updates"]));
    assert!(info["connectionId"].as_str().is_some_and(|c| !c.is_empty()));
    // The response is still open: the event arrives incrementally, not at the end.
    let id = host
        .publish(
            "acme",
            "dashboard-updates",
            "dashboard-update",
            json!({"metric": "SROI", "value": 2.5}),
        )
        .await;
    let e = s.next_event().await;
    assert_eq!(
        (e.id.as_deref(), e.event.as_str()),
        (Some(id.as_str()), "dashboard-update")
    );
    assert_eq!(e.json(), json!({"metric": "SROI", "value": 2.5}));
}

#[tokio::test]
async fn stream_headers_disable_caching_and_buffering() {
    let host = TestHost::start().await;
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    let h = res.headers();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(h["cache-control"], "no-cache, no-transform");
    assert_eq!(h["x-accel-buffering"], "no");
    assert!(h.get("content-length").is_none());
}

#[tokio::test]
async fn one_stream_carries_several_channels_in_publish_order() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates", "report-updates"]).await;
    assert_eq!(s.next_event().await.event, "connected");
    let a = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!(1))
        .await;
    let b = host.publish("acme", "report-updates", "report-ready", json!(2)).await;
    let c = host
        .publish("acme", "evidence-updates", "evidence-update", json!(3))
        .await; // not subscribed
    let d = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!(4))
        .await;
    let got: Vec<String> = [s.next_event().await, s.next_event().await, s.next_event().await]
        .into_iter()
        .map(|e| e.id.unwrap())
        .collect();
    assert_eq!(got, vec![a, b, d]);
    assert!(!got.contains(&c));
}

#[tokio::test]
async fn multi_line_and_unicode_data_round_trip() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    s.next_event().await;
    let data = json!({"text": "line one\nline two\r\nid: fake", "emoji": "✓"});
    host.publish("acme", "dashboard-updates", "dashboard-update", data.clone())
        .await;
    let e = s.next_event().await;
    assert_eq!(e.json(), data);
    assert_eq!(e.event, "dashboard-update", "payload newlines cannot inject fields");
}

#[tokio::test]
async fn in_process_publish_reaches_http_subscribers() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["evidence-updates"]).await;
    s.next_event().await;
    let raw = serde_json::value::to_raw_value(&json!({"evidenceId": 7})).unwrap();
    let id = host
        .broker
        .publish("acme", "evidence-updates", "evidence-update", raw)
        .await
        .unwrap();
    assert_eq!(s.next_event().await.id, Some(id));
}

#[tokio::test]
async fn http2_with_prior_knowledge_streams_too() {
    // What Envoy's h2c upstream speaks: several streams on one connection.
    let host = TestHost::start().await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let url = host.url("/sse/stream?companyId=acme&channel=dashboard-updates");
    let mut streams = Vec::new();
    for _ in 0..3 {
        let res = h2.get(&url).bearer_auth(token("acme", "VIEWER")).send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        let mut s = SseStream::new(res);
        assert_eq!(s.next_event().await.event, "connected");
        streams.push(s);
    }
    let id = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!(1))
        .await;
    for s in &mut streams {
        assert_eq!(s.next_event().await.id.as_ref(), Some(&id));
    }
}
