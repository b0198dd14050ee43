use serde_json::{json, Value};
use sse_tests::*;

async fn post(host: &TestHost, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = host.client.post(host.url(path)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn batch_publish_returns_ordered_ids_and_is_all_or_nothing() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates", "report-updates"]).await;
    s.next_event().await;
    let publisher = token("acme", "PUBLISHER");
    let batch = json!({"events": [
        {"companyId": "acme", "channel": "dashboard-updates", "type": "dashboard-update", "data": {"a": 1}},
        {"companyId": "acme", "channel": "report-updates", "type": "report-ready", "data": {"b": 2}}
    ]});
    let (status, body) = post(&host, "/sse/publish", Some(&publisher), &batch).await;
    assert_eq!(status, 200);
    let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).unwrap();
    assert_eq!(s.next_event().await.id.as_ref(), Some(&ids[0]));
    assert_eq!(s.next_event().await.id.as_ref(), Some(&ids[1]));
    let bad = json!({"events": [
        {"companyId": "acme", "channel": "dashboard-updates", "type": "ok", "data": 1},
        {"companyId": "acme", "channel": "dashboard-updates", "type": "bad type", "data": 2}
    ]});
    let (status, body) = post(&host, "/sse/publish", Some(&publisher), &bad).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("INVALID_REQUEST")));
    assert_eq!(
        host.stats().await["counters"]["published"],
        2,
        "nothing of the bad batch was published"
    );
}

#[tokio::test]
async fn publishers_are_scoped_to_their_company() {
    let host = TestHost::start().await;
    let body = json!({"companyId": "globex", "channel": "dashboard-updates", "type": "x", "data": 1});
    let (status, err) = post(&host, "/sse/publish", Some(&token("acme", "PUBLISHER")), &body).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = post(&host, "/sse/publish", Some(&token("acme", "VIEWER")), &json!({})).await;
    assert_eq!(status, 403, "viewers cannot publish");
    let (status, _) = post(&host, "/sse/publish", Some(&token("root", "SUPER_ADMIN")), &body).await;
    assert_eq!(status, 200, "super admins publish anywhere");
}

#[tokio::test]
async fn oversized_events_and_bodies_get_413() {
    let mut cfg = config(false);
    cfg.hub.max_event_bytes = 1024;
    cfg.publish.max_body_bytes = 4096;
    let host = TestHost::start_with(cfg).await;
    let publisher = token("acme", "PUBLISHER");
    let big = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "x", "data": "y".repeat(2000)});
    let (status, body) = post(&host, "/sse/publish", Some(&publisher), &big).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")));
    let huge = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "x", "data": "y".repeat(5000)});
    let (status, body) = post(&host, "/sse/publish", Some(&publisher), &huge).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")));
}

#[tokio::test]
async fn publish_rate_limit_answers_429_with_retry_after() {
    let mut cfg = config(false);
    cfg.publish.rate_per_sec = 1.0;
    cfg.publish.burst = 2.0;
    let host = TestHost::start_with(cfg).await;
    let publisher = token("acme", "PUBLISHER");
    let body = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "x", "data": 1});
    for _ in 0..2 {
        assert_eq!(post(&host, "/sse/publish", Some(&publisher), &body).await.0, 200);
    }
    let res = host
        .client
        .post(host.url("/sse/publish"))
        .bearer_auth(&publisher)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "RATE_LIMITED");
}

#[tokio::test]
async fn test_broadcast_exists_only_in_dev_mode_and_needs_no_token() {
    let body = json!({"companyId": "test-company", "channel": "dashboard-updates", "type": "dashboard-update", "data": {"metric": "SROI", "value": 2.5}});
    let prod = TestHost::start().await;
    assert_eq!(post(&prod, "/sse/test-broadcast", None, &body).await.0, 404);
    let dev = TestHost::start_with(config(true)).await;
    let mut s = dev.stream("test-company", &["dashboard-updates"]).await;
    s.next_event().await;
    let (status, reply) = post(&dev, "/sse/test-broadcast", None, &body).await;
    assert_eq!(status, 200);
    assert_eq!(s.next_event().await.id.as_deref(), reply["id"].as_str());
}

#[tokio::test]
async fn stats_are_for_admins_and_count_adoption() {
    let host = TestHost::start().await;
    let res = host
        .client
        .get(host.url("/sse/stats"))
        .bearer_auth(token("acme", "VIEWER"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let mut s = host.stream("acme", &["dashboard-updates", "report-updates"]).await;
    s.next_event().await;
    host.publish("acme", "dashboard-updates", "x", json!(1)).await;
    s.next_event().await;
    let stats = host.stats().await;
    assert_eq!(stats["totalConnections"], 1);
    assert_eq!(stats["connectionsByCompany"], json!({"acme": 1}));
    assert_eq!(
        stats["connectionsByChannel"],
        json!({"dashboard-updates": 1, "report-updates": 1})
    );
    assert_eq!(stats["historySize"], 1);
    assert_eq!(stats["counters"]["published"], 1);
    assert_eq!(stats["counters"]["delivered"], 1);
    assert_eq!(stats["counters"]["streamsOpened"], 1);
}
