use serde_json::{json, Value};
use sse_tests::*;

async fn poll(host: &TestHost, query: &str) -> Value {
    let path = format!("/sse/poll?companyId=acme&channel=dashboard-updates{query}");
    host.get_json(&path, &token("acme", "VIEWER")).await
}

fn ids(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn polling_returns_the_same_events_and_ids_as_the_stream() {
    let host = TestHost::start().await;
    let head = poll(&host, "").await;
    assert_eq!(head["events"], json!([]));
    let cursor = head["next"].as_str().unwrap().to_owned();
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    s.next_event().await;
    let mut streamed = Vec::new();
    for i in 0..4 {
        host.publish("acme", "dashboard-updates", "dashboard-update", json!({"i": i}))
            .await;
        let e = s.next_event().await;
        streamed.push((e.id.clone().unwrap(), e.event.clone(), e.json()));
    }
    let body = poll(&host, &format!("&since={cursor}")).await;
    let polled: Vec<(String, String, Value)> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
                e["data"].clone(),
            )
        })
        .collect();
    assert_eq!(polled, streamed);
    assert_eq!(body["next"], json!(streamed[3].0));
    assert_eq!(body["reset"], false);
}

#[tokio::test]
async fn limit_pages_through_with_next() {
    let host = TestHost::start().await;
    let cursor = poll(&host, "").await["next"].as_str().unwrap().to_owned();
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(host.publish("acme", "dashboard-updates", "x", json!(i)).await);
    }
    let page1 = poll(&host, &format!("&since={cursor}&limit=2")).await;
    assert_eq!(ids(&page1), all[..2]);
    let page2 = poll(&host, &format!("&since={}&limit=2", page1["next"].as_str().unwrap())).await;
    assert_eq!(ids(&page2), all[2..4]);
    let page3 = poll(&host, &format!("&since={}&limit=2", page2["next"].as_str().unwrap())).await;
    assert_eq!(ids(&page3), all[4..]);
}

#[tokio::test]
async fn long_poll_answers_as_soon_as_an_event_arrives() {
    let host = TestHost::start().await;
    let cursor = poll(&host, "").await["next"].as_str().unwrap().to_owned();
    let waiting = {
        let client = host.client.clone();
        let url = host.url(&format!(
            "/sse/poll?companyId=acme&channel=dashboard-updates&since={cursor}&wait=30"
        ));
        tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token("acme", "VIEWER"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // The poll is parked until the publish below; wait_for_stats observes it was counted.
    host.wait_for_stats("the long poll to arrive", |s| s["counters"]["pollRequests"] == 2)
        .await;
    let id = host.publish("acme", "dashboard-updates", "x", json!("now")).await;
    let body = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("answered before its 30 s wait")
        .unwrap();
    assert_eq!(ids(&body), vec![id]);
}

#[tokio::test]
async fn stream_then_poll_then_stream_loses_and_duplicates_nothing() {
    let host = TestHost::start().await;
    let viewer = token("acme", "VIEWER");
    let mut received: Vec<String> = Vec::new();
    let mut published: Vec<String> = Vec::new();
    let mut s = host.stream_as(&viewer, "acme", &["dashboard-updates"], None).await;
    s.next_event().await;
    for i in 0..3 {
        published.push(host.publish("acme", "dashboard-updates", "x", json!(i)).await);
        received.push(s.next_event().await.id.unwrap());
    }
    drop(s); // SSE lost: fall back to polling from the last seen ID
    for i in 3..6 {
        published.push(host.publish("acme", "dashboard-updates", "x", json!(i)).await);
    }
    let body = poll(&host, &format!("&since={}", received.last().unwrap())).await;
    received.extend(ids(&body));
    let cursor = body["next"].as_str().unwrap().to_owned();
    for i in 6..8 {
        published.push(host.publish("acme", "dashboard-updates", "x", json!(i)).await);
    }
    let mut s = host
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&cursor))
        .await; // back to SSE
    s.next_event().await;
    for _ in 6..8 {
        received.push(s.next_event().await.id.unwrap());
    }
    assert_eq!(received, published);
}

#[tokio::test]
async fn polling_with_a_lost_cursor_reports_reset() {
    let host = TestHost::start().await;
    let body = poll(&host, "&since=deadbeef-5").await;
    assert_eq!(
        (body["reset"].clone(), body["events"].clone()),
        (json!(true), json!([]))
    );
    assert!(body["next"].as_str().is_some());
}
