use sse_tests::*;

#[tokio::test]
async fn over_the_company_limit_is_429_and_aborted_clients_return_their_slots() {
    let host = TestHost::start().await; // test policy: 5 per company
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut s = host.stream("acme", &["dashboard-updates"]).await;
        s.next_event().await;
        open.push(s);
    }
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "TOO_MANY_CONNECTIONS"
    );
    // Another company is unaffected.
    let mut other = host.stream("globex", &["dashboard-updates"]).await;
    other.next_event().await;
    // Clients vanish without a goodbye: the slots come back.
    open.truncate(2);
    host.wait_for_stats("aborted streams to release their slots", |s| {
        s["connectionsByCompany"]["acme"] == 2
    })
    .await;
    let mut again = host.stream("acme", &["dashboard-updates"]).await;
    assert_eq!(again.next_event().await.event, "connected");
    drop((open, again, other));
    host.wait_for_stats("every slot back", |s| s["totalConnections"] == 0)
        .await;
}

#[tokio::test]
async fn the_host_wide_limit_applies_across_companies() {
    let mut cfg = config(false);
    cfg.hub.max_connections = 2;
    let host = TestHost::start_with(cfg).await;
    let _a = host.stream("a", &["dashboard-updates"]).await;
    let _b = host.stream("b", &["dashboard-updates"]).await;
    let res = host
        .open_stream(&token("c", "VIEWER"), "c", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let host = TestHost::start().await;
    let short = token_with(
        serde_json::json!({"sub": "t", "company_id": "acme", "role": "VIEWER"}),
        2,
    );
    let mut s = host.stream_as(&short, "acme", &["dashboard-updates"], None).await;
    s.next_event().await;
    let rest = s.until_end().await;
    let closing = rest.last().expect("a closing event before the end");
    assert_eq!(
        (closing.event.as_str(), closing.json()["reason"].as_str()),
        ("closing", Some("expired"))
    );
    assert!(
        s.seen.iter().any(|f| matches!(f, Frame::Retry(_))),
        "a retry hint precedes the end"
    );
}

#[tokio::test]
async fn a_company_in_a_tier_gets_its_tiers_limit_on_both_edges() {
    for (edge, cfg) in [
        ("native", config_for(&tiered_policy())),
        ("wasm", wasm_config_for(&tiered_policy())),
    ] {
        let host = TestHost::start_with(cfg).await;
        assert_eq!(host.streams_admitted("acme").await, (3, 429), "{edge}: acme's tier");
        assert_eq!(host.streams_admitted("globex").await, (2, 429), "{edge}: the default");
    }
}

#[tokio::test]
async fn a_tier_sets_its_companies_history_and_publish_rate() {
    let host = TestHost::start_with(config_for(&tiered_policy())).await;
    // History: tiny keeps one event per channel, acme five (the default would keep 100,
    // so acme's reset below shows its tier's number is the one applied).
    for (company, published, exact_after, reset_after) in [("tiny", 3, None, 0), ("acme", 7, Some(1), 0)] {
        let mut ids = Vec::new();
        for n in 0..published {
            ids.push(
                host.publish(company, "dashboard-updates", "update", serde_json::json!(n))
                    .await,
            );
        }
        let viewer = token(company, "VIEWER");
        if let Some(i) = exact_after {
            let e = first_event_after(&host, &viewer, company, &ids[i]).await;
            assert_eq!(
                e.id.as_ref(),
                Some(&ids[i + 1]),
                "{company}: replayed exactly within its history"
            );
        }
        let e = first_event_after(&host, &viewer, company, &ids[reset_after]).await;
        assert_eq!(e.event, "reset", "{company}: older than its history");
    }
    // Publish rate: meter's burst is 2; the default (the test config's) is far higher.
    async fn publish(host: &TestHost, company: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"companyId": company, "channel": "dashboard-updates", "type": "x", "data": 1});
        let (status, reply, _) = host.publish_keyed(&token(company, "PUBLISHER"), &[], &body).await;
        (status, reply)
    }
    for _ in 0..2 {
        assert_eq!(publish(&host, "meter").await.0, 200);
    }
    let (status, err) = publish(&host, "meter").await;
    assert_eq!((status, err["error"].as_str()), (429, Some("RATE_LIMITED")));
    for _ in 0..3 {
        assert_eq!(
            publish(&host, "globex").await.0,
            200,
            "other companies keep the default rate"
        );
    }
}

#[tokio::test]
async fn a_tier_limits_its_companies_to_its_channels_on_both_edges() {
    for (edge, cfg) in [
        ("native", config_for(&tiered_policy())),
        ("wasm", wasm_config_for(&tiered_policy())),
    ] {
        let host = TestHost::start_with(cfg).await;
        let viewer = token("tiny", "VIEWER");
        let ok = host.open_stream(&viewer, "tiny", &["dashboard-updates"], None).await;
        assert_eq!(ok.status(), 200, "{edge}");
        for channels in [&["report-updates"][..], &["dashboard-updates", "report-updates"]] {
            let res = host.open_stream(&viewer, "tiny", channels, None).await;
            assert_eq!(res.status(), 403, "{edge}: {channels:?} is outside tiny's tier");
        }
        let publisher = token("tiny", "PUBLISHER");
        let body = |channel: &str| serde_json::json!({"companyId": "tiny", "channel": channel, "type": "x", "data": 1});
        let (status, err, _) = host.publish_keyed(&publisher, &[], &body("report-updates")).await;
        assert_eq!((status, err["error"].as_str()), (403, Some("FORBIDDEN")), "{edge}");
        assert_eq!(
            host.publish_keyed(&publisher, &[], &body("dashboard-updates")).await.0,
            200
        );
        // Companies outside the tier keep every channel.
        let other = host
            .open_stream(&token("globex", "VIEWER"), "globex", &["report-updates"], None)
            .await;
        assert_eq!(other.status(), 200, "{edge}");
    }
}

/// The first event after `connected` of a stream of `company` resuming after `id`.
async fn first_event_after(host: &TestHost, viewer: &str, company: &str, id: &str) -> SseEvent {
    let mut s = host.stream_as(viewer, company, &["dashboard-updates"], Some(id)).await;
    assert_eq!(s.next_event().await.event, "connected");
    s.next_event().await
}
