use serde_json::json;
use sse_tests::*;

async fn publish_n(host: &TestHost, company: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            host.publish(company, "dashboard-updates", "dashboard-update", json!({"n": i}))
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn resume_delivers_exactly_the_missed_events_in_order() {
    let host = TestHost::start().await;
    let viewer = token("acme", "VIEWER");
    let mut s = host.stream_as(&viewer, "acme", &["dashboard-updates"], None).await;
    s.next_event().await;
    let first = publish_n(&host, "acme", 3).await;
    for id in &first {
        assert_eq!(s.next_event().await.id.as_ref(), Some(id));
    }
    drop(s);
    let missed = publish_n(&host, "acme", 5).await;
    let mut s = host
        .stream_as(&viewer, "acme", &["dashboard-updates"], Some(&first[2]))
        .await;
    assert_eq!(s.next_event().await.event, "connected");
    for id in &missed {
        assert_eq!(
            s.next_event().await.id.as_ref(),
            Some(id),
            "replay in order, nothing skipped"
        );
    }
    let live = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!("live"))
        .await;
    assert_eq!(
        s.next_event().await.id,
        Some(live),
        "no duplicate between replay and live"
    );
    let stats = host.stats().await;
    assert_eq!(stats["counters"]["resumed"], 1);
}

#[tokio::test]
async fn last_event_id_header_wins_over_query_parameter() {
    let host = TestHost::start().await;
    let ids = publish_n(&host, "acme", 3).await;
    let url = host.url(&format!(
        "/sse/stream?companyId=acme&channel=dashboard-updates&lastEventId={}",
        ids[0]
    ));
    let res = host
        .client
        .get(&url)
        .bearer_auth(token("acme", "VIEWER"))
        .header("last-event-id", &ids[1])
        .send()
        .await
        .unwrap();
    let mut s = SseStream::new(res);
    s.next_event().await;
    assert_eq!(s.next_event().await.id.as_ref(), Some(&ids[2]));
    let res = host
        .client
        .get(&url)
        .bearer_auth(token("acme", "VIEWER"))
        .send()
        .await
        .unwrap();
    let mut s = SseStream::new(res);
    s.next_event().await;
    assert_eq!(
        s.next_event().await.id.as_ref(),
        Some(&ids[1]),
        "query parameter used without the header"
    );
}

#[tokio::test]
async fn resume_across_several_channels_uses_one_cursor() {
    let host = TestHost::start().await;
    let viewer = token("acme", "VIEWER");
    let chans = ["dashboard-updates", "report-updates"];
    let start = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!(0))
        .await;
    let mut expected = Vec::new();
    for i in 0..6 {
        let ch = chans[i % 2];
        expected.push(host.publish("acme", ch, "x", json!(i)).await);
    }
    let mut s = host.stream_as(&viewer, "acme", &chans, Some(&start)).await;
    s.next_event().await;
    for id in &expected {
        assert_eq!(s.next_event().await.id.as_ref(), Some(id));
    }
}

async fn reset_reason(s: &mut SseStream) -> String {
    assert_eq!(s.next_event().await.event, "connected");
    let e = s.next_event().await;
    assert_eq!(e.event, "reset", "expected a reset, got {e:?}");
    assert_eq!(
        e.json()["lastEventId"].as_str(),
        e.id.as_deref(),
        "reset carries the ID to continue from"
    );
    e.json()["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_id_older_than_history_yields_reset() {
    let mut cfg = config(false);
    cfg.hub.history_size = 5;
    let host = TestHost::start_with(cfg).await;
    let ids = publish_n(&host, "acme", 10).await;
    let mut s = host
        .stream_as(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], Some(&ids[2]))
        .await;
    assert_eq!(reset_reason(&mut s).await, "too_old");
    // The boundary: the last evicted ID is too old, the one after resumes exactly.
    let mut s = host
        .stream_as(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], Some(&ids[4]))
        .await;
    s.next_event().await;
    assert_eq!(s.next_event().await.id.as_ref(), Some(&ids[5]));
}

#[tokio::test]
async fn unknown_and_future_ids_yield_reset() {
    let host = TestHost::start().await;
    let ids = publish_n(&host, "acme", 1).await;
    let (epoch, _) = ids[0].rsplit_once('-').unwrap();
    for bad in ["event-123".to_owned(), "garbage".to_owned(), format!("{epoch}-999999")] {
        let mut s = host
            .stream_as(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], Some(&bad))
            .await;
        assert_eq!(reset_reason(&mut s).await, "unknown_id", "{bad}");
    }
}

#[tokio::test]
async fn an_id_from_before_a_restart_yields_reset() {
    let before = TestHost::start().await;
    let old = publish_n(&before, "acme", 1).await.remove(0);
    before.stop().await;
    let after = TestHost::start().await;
    let mut s = after
        .stream_as(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], Some(&old))
        .await;
    assert_eq!(reset_reason(&mut s).await, "restarted");
    let live = after
        .publish("acme", "dashboard-updates", "dashboard-update", json!(1))
        .await;
    assert_eq!(
        s.next_event().await.id,
        Some(live),
        "the stream goes on after the reset"
    );
}
