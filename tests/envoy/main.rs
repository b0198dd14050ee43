//! The real Envoy (V8 runtime, `--concurrency 2`) in front of the host, running the
//! shipped envoy.yaml and the built filter.

use std::time::Duration;

use serde_json::{json, Value};
use sse_host::EdgeMode;
use sse_tests::envoy::{envoy_bin, render_config, Envoy};
use sse_tests::*;

mod tls;

/// A host in `envoy` edge mode (heartbeat `beat`) with Envoy in front of it.
async fn stack(beat: Duration) -> (TestHost, Envoy) {
    let mut cfg = config(false);
    cfg.edge = EdgeMode::Envoy;
    cfg.stream.heartbeat = beat;
    let host = TestHost::start_with(cfg).await;
    let envoy = Envoy::start(host.addr, &policy_json(false)).await;
    (host, envoy)
}

async fn get(host: &TestHost, url: &str, token: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = host.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Publishes in-process (the host behind Envoy trusts only signed identities).
async fn publish(host: &TestHost, kind: &str, data: Value) -> String {
    let raw = serde_json::value::to_raw_value(&data).unwrap();
    host.broker
        .publish("acme", "dashboard-updates", kind, raw)
        .await
        .unwrap()
}

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

#[test]
fn the_shipped_config_passes_envoy_validation() {
    let dir = std::env::temp_dir().join(format!("sse-envoy-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("envoy.yaml");
    std::fs::write(
        &file,
        render_config(
            10000,
            9901,
            "127.0.0.1:4000".parse().unwrap(),
            &policy_json(false),
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/tls"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(envoy_bin())
        .args(["--mode", "validate", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn envoy_decides_exactly_like_the_embedded_edge() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let embedded = TestHost::start_with(wasm_config()).await;
    assert_same_decisions(&host.client, envoy.addr, embedded.addr, "envoy vs embedded").await;
}

#[tokio::test]
async fn events_and_heartbeats_pass_one_by_one_without_buffering() {
    let (host, envoy) = stack(Duration::from_secs(1)).await;
    let res = get(&host, &envoy.url(STREAM), Some(&token("acme", "VIEWER")), &[]).await;
    assert_eq!(res.status(), 200, "{}", envoy.log());
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    assert_eq!(res.headers()["cache-control"], "no-cache, no-transform");
    let mut s = SseStream::new(res);
    assert_eq!(s.next_event().await.event, "connected");
    let id = publish(&host, "dashboard-update", json!({"n": 1})).await;
    assert_eq!(
        s.next_event().await.id,
        Some(id),
        "the first event arrives while the stream is open"
    );
    // Heartbeats are a few bytes each: if anything buffered, these would never arrive.
    for _ in 0..2 {
        assert_eq!(s.next_frame().await, Some(Frame::Comment("heartbeat".into())));
    }
}

#[tokio::test]
async fn a_stream_outlives_envoys_default_route_timeout() {
    let (host, envoy) = stack(Duration::from_secs(5)).await;
    let mut s = SseStream::new(get(&host, &envoy.url(STREAM), Some(&token("acme", "VIEWER")), &[]).await);
    s.next_event().await;
    tokio::time::sleep(Duration::from_secs(17)).await; // Envoy's default is 15 s
    let id = publish(&host, "late", json!(1)).await;
    assert_eq!(s.next_event().await.id, Some(id), "still open after 17 s");
}

#[tokio::test]
async fn the_company_limit_is_exact_across_envoy_workers_and_slots_return() {
    let (host, envoy) = stack(Duration::from_secs(30)).await; // test policy: 5 per company
    let viewer = token("acme", "VIEWER");
    let opens = (0..8).map(|_| {
        let (client, url, viewer) = (reqwest::Client::new(), envoy.url(STREAM), viewer.clone());
        tokio::spawn(async move { client.get(url).bearer_auth(viewer).send().await.unwrap() })
    });
    let mut admitted = Vec::new();
    let mut refused = 0;
    for o in opens {
        let res = o.await.unwrap();
        match res.status().as_u16() {
            200 => admitted.push(SseStream::new(res)),
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (admitted.len(), refused),
        (5, 3),
        "exactly the limit, across both workers"
    );
    for s in &mut admitted {
        s.next_event().await;
    }
    drop(admitted); // clients vanish
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while host.broker.stats().hub.total_connections > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the host never saw the aborts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The filter's counter is back to 0: the full limit opens again.
    let mut again = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while again.len() < 5 {
        let res = get(&host, &envoy.url(STREAM), Some(&viewer), &[]).await;
        if res.status() == 200 {
            again.push(res);
        } else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "slots never came back: {}",
                res.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_host_as_trusted() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let forged = [
        ("x-sse-company", "globex"),
        ("x-sse-role", "SUPER_ADMIN"),
        ("x-sse-edge-sig", "forged"),
    ];
    // Without a token, forged headers get nothing.
    assert_eq!(get(&host, &envoy.url(STREAM), None, &forged).await.status(), 401);
    let other = "/sse/stream?companyId=globex&channel=dashboard-updates";
    assert_eq!(
        get(&host, &envoy.url(other), Some(&token("acme", "VIEWER")), &forged)
            .await
            .status(),
        403
    );
    // With a valid token the host sees the filter's identity, not the client's.
    let mut s = SseStream::new(get(&host, &envoy.url(STREAM), Some(&token("acme", "VIEWER")), &forged).await);
    assert_eq!(s.next_event().await.json()["companyId"], "acme");
    // Straight to the host, past Envoy: refused.
    let direct = get(&host, &host.url(STREAM), Some(&token("acme", "VIEWER")), &forged).await;
    assert_eq!(direct.status(), 401);
}

#[tokio::test]
async fn publishes_through_envoy_are_signed_over_their_body_and_delivered() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let mut s = SseStream::new(get(&host, &envoy.url(STREAM), Some(&token("acme", "VIEWER")), &[]).await);
    assert_eq!(s.next_event().await.event, "connected");
    let post = |body: Value| {
        host.client
            .post(envoy.url("/sse/publish"))
            .bearer_auth(token("acme", "PUBLISHER"))
            .json(&body)
            .send()
    };
    // One event, then a batch big enough to reach Envoy in several body chunks: the
    // filter holds the headers until the whole body is in, signs its digest, and the
    // host accepts only that body.
    let one = post(json!({"companyId": "acme", "channel": "dashboard-updates", "type": "one", "data": {"n": 0}}))
        .await
        .unwrap();
    assert_eq!(one.status(), 200, "{}", envoy.log());
    let id: Value = one.json().await.unwrap();
    assert_eq!(s.next_event().await.id.as_deref(), id["id"].as_str());
    let pad = "x".repeat(1000);
    let events: Vec<Value> = (1..=100)
        .map(|n| json!({"companyId": "acme", "channel": "dashboard-updates", "type": "batch", "data": {"n": n, "pad": pad}}))
        .collect();
    let batch = post(json!({ "events": events })).await.unwrap();
    assert_eq!(batch.status(), 200, "{}", envoy.log());
    for n in 1..=100 {
        let e = s.next_event().await;
        assert_eq!(e.event, "batch");
        assert_eq!(serde_json::from_str::<Value>(&e.data).unwrap()["n"], n);
    }
}

#[tokio::test]
async fn nothing_is_buffered_for_a_publish_the_filter_refused() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    // A publish that announces 900 kB and sends none: refused on its headers, at once.
    publishes_refused_before_their_body(envoy.addr).await;
    // An admitted publish past the buffer limit is refused by Envoy, not cut.
    let big =
        json!({"companyId": "acme", "channel": "dashboard-updates", "type": "big", "data": "x".repeat(1_100_000)});
    let res = host
        .client
        .post(envoy.url("/sse/publish"))
        .bearer_auth(token("acme", "PUBLISHER"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(host.broker.hub_stats().counters.published, 0);
}

#[tokio::test]
async fn a_publish_retried_through_envoy_with_its_idempotency_key_is_stored_once() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let through = HostClient::new(&format!("http://{}", envoy.addr));
    let publisher = token("acme", "PUBLISHER");
    let body = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "once", "data": {"n": 1}});
    let (status, first, replayed) = through.publish_keyed(&publisher, &["order-1"], &body).await;
    assert_eq!((status, replayed), (200, false), "{first} {}", envoy.log());
    let (status, again, replayed) = through.publish_keyed(&publisher, &["order-1"], &body).await;
    assert_eq!((status, replayed, &again["id"]), (200, true, &first["id"]));
    let other = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "once", "data": {"n": 2}});
    let (status, err, _) = through.publish_keyed(&publisher, &["order-1"], &other).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")));
    assert_eq!(host.broker.hub_stats().counters.published, 1);
}

#[tokio::test]
async fn the_hosts_metrics_are_not_served_through_envoy() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let through = get(&host, &envoy.url("/metrics"), None, &[]).await;
    assert_eq!(through.status(), 404, "Envoy answers /metrics itself");
    let direct = get(&host, &host.url("/metrics"), None, &[]).await;
    assert_eq!(direct.status(), 200, "Prometheus scrapes the host directly");
    let feed = get(&host, &envoy.url("/edge/revocations"), None, &[]).await;
    assert_eq!(
        feed.status(),
        404,
        "the revocation feed is the filter's, not the public's"
    );
}

#[tokio::test]
async fn a_company_in_a_tier_gets_its_tiers_limit_through_envoy() {
    let policy = tiered_policy();
    let mut cfg = config_for(&policy);
    cfg.edge = EdgeMode::Envoy;
    let host = TestHost::start_with(cfg).await;
    let envoy = Envoy::start(host.addr, &policy).await;
    let through = HostClient::new(&format!("http://{}", envoy.addr));
    assert_eq!(through.streams_admitted("acme").await, (3, 429), "{}", envoy.log());
    assert_eq!(through.streams_admitted("globex").await, (2, 429));
}

#[tokio::test]
async fn a_revocation_through_envoy_cuts_the_stream_and_envoys_filter_refuses_the_token() {
    let (host, envoy) = stack(Duration::from_secs(30)).await;
    let leaked = token_with(
        json!({"sub": "ann", "company_id": "acme", "role": "VIEWER", "jti": "leaked"}),
        600,
    );
    let mut stream = SseStream::new(get(&host, &envoy.url(STREAM), Some(&leaked), &[]).await);
    let connected = stream.next_event().await;
    assert_eq!(connected.event, "connected");
    // The admin action goes through Envoy too: the filter signs its body.
    let listing = get(
        &host,
        &envoy.url("/sse/admin/connections"),
        Some(&token("acme", "ADMIN")),
        &[],
    )
    .await;
    assert_eq!(listing.status(), 200);
    assert_eq!(listing.json::<Value>().await.unwrap()["totalConnections"], 1);
    let res = host
        .client
        .post(envoy.url("/sse/admin/revoke"))
        .bearer_auth(token("acme", "ADMIN"))
        .json(&json!({"jti": "leaked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["disconnected"], 1);
    let events = stream.until_end().await;
    assert_eq!(
        events.last().map(|e| e.json()["reason"].clone()),
        Some(json!("revoked"))
    );
    // Envoy's filter learns the revocation on its next refresh (1 s) and refuses the
    // token itself; until then the host refuses it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let res = get(&host, &envoy.url(STREAM), Some(&leaked), &[]).await;
        assert_eq!(res.status(), 401);
        if envoy.stat("wasmcustom.sse_filter_denied_total.reason.revoked").await > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the filter never refused; log:\n{}",
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gauge = envoy.stat("wasmcustom.sse_filter_revocations").await;
    assert_eq!(gauge, 1, "each VM holds the one entry");
}
