//! `edge = "envoy"`: the host trusts only identities signed by the filter.

use serde_json::json;
use sse_host::EdgeMode;
use sse_policy::identity;
use sse_policy::{Identity, Secret};
use sse_tests::*;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn who(company: &str) -> Identity {
    Identity {
        subject: "u1".into(),
        company: company.into(),
        roles: vec!["VIEWER".into()],
        expires_at: Some(now() + 600),
        super_admin: false,
        token_id: String::new(),
        issued_at: None,
    }
}

async fn envoy_host() -> TestHost {
    let mut cfg = config(false);
    cfg.edge = EdgeMode::Envoy;
    TestHost::start_with(cfg).await
}

async fn get(host: &TestHost, target: &str, headers: &[(&'static str, String)]) -> reqwest::Response {
    let mut req = host.client.get(host.url(target));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

/// The identity headers the edge would add to `target` (path and query: both signed).
fn signed(target: &str, company: &str, ts: u64) -> Vec<(&'static str, String)> {
    identity::sign(
        &Secret::new(EDGE_SECRET),
        "GET",
        target,
        &who(company),
        &["dashboard-updates".into()],
        b"",
        ts,
    )
}

#[tokio::test]
async fn a_signed_identity_opens_a_stream() {
    let host = envoy_host().await;
    let res = get(&host, STREAM, &signed(STREAM, "acme", now())).await;
    assert_eq!(res.status(), 200);
    let mut s = SseStream::new(res);
    assert_eq!(s.next_event().await.event, "connected");
    let raw = serde_json::value::to_raw_value(&json!({"via": "hub"})).unwrap();
    let id = host
        .broker
        .publish("acme", "dashboard-updates", "x", raw)
        .await
        .unwrap();
    assert_eq!(s.next_event().await.id, Some(id));
}

#[tokio::test]
async fn direct_requests_with_a_token_but_no_signature_are_refused() {
    let host = envoy_host().await;
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn forged_stale_or_misapplied_identities_are_refused() {
    let host = envoy_host().await;
    let mut forged = signed("/sse/stream?companyId=globex&channel=dashboard-updates", "acme", now());
    forged[0].1 = "globex".into(); // x-sse-company changed after signing
    assert_eq!(
        get(&host, "/sse/stream?companyId=globex&channel=dashboard-updates", &forged)
            .await
            .status(),
        401
    );
    let wrong_key = identity::sign(
        &Secret::new(JWT_SECRET),
        "GET",
        STREAM,
        &who("acme"),
        &["dashboard-updates".into()],
        b"",
        now(),
    );
    assert_eq!(get(&host, STREAM, &wrong_key).await.status(), 401);
    assert_eq!(
        get(&host, STREAM, &signed(STREAM, "acme", now() - 120)).await.status(),
        401,
        "stale"
    );
    assert_eq!(
        get(
            &host,
            STREAM,
            &signed("/sse/poll?companyId=acme&channel=dashboard-updates", "acme", now())
        )
        .await
        .status(),
        401,
        "signed for another route"
    );
    let other_company = get(
        &host,
        "/sse/stream?companyId=globex&channel=dashboard-updates",
        &signed("/sse/stream?companyId=globex&channel=dashboard-updates", "acme", now()),
    )
    .await;
    assert_eq!(other_company.status(), 403, "query must name the signed company");
    let other_channel = get(
        &host,
        "/sse/stream?companyId=acme&channel=report-updates",
        &signed("/sse/stream?companyId=acme&channel=report-updates", "acme", now()),
    )
    .await;
    assert_eq!(other_channel.status(), 403, "query must name the signed channels");
}

#[tokio::test]
async fn a_captured_identity_cannot_be_replayed_with_another_query() {
    let host = envoy_host().await;
    let captured = signed(STREAM, "acme", now());
    assert_eq!(get(&host, STREAM, &captured).await.status(), 200, "the original");
    for replay in [
        "/sse/stream?companyId=acme&channel=dashboard-updates&lastEventId=0badcafe-1",
        "/sse/stream?channel=dashboard-updates&companyId=acme",
    ] {
        assert_eq!(get(&host, replay, &captured).await.status(), 401, "{replay}");
    }
    let future = signed(STREAM, "acme", now() + 60);
    assert_eq!(get(&host, STREAM, &future).await.status(), 401, "signed in the future");
}

#[tokio::test]
async fn a_signed_publish_cannot_be_replayed_with_another_body() {
    let host = envoy_host().await;
    let publisher = Identity {
        roles: vec!["PUBLISHER".into()],
        ..who("acme")
    };
    let body = json!({"companyId": "acme", "channel": "dashboard-updates", "type": "t", "data": {"n": 1}}).to_string();
    let headers = identity::sign(
        &Secret::new(EDGE_SECRET),
        "POST",
        "/sse/publish",
        &publisher,
        &[],
        body.as_bytes(),
        now(),
    );
    let post = |body: String| {
        let mut req = host
            .client
            .post(host.url("/sse/publish"))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        req.send()
    };
    let evil =
        json!({"companyId": "acme", "channel": "dashboard-updates", "type": "evil", "data": {"n": 666}}).to_string();
    let refused = post(evil).await.unwrap();
    assert_eq!(refused.status(), 401, "the signed headers with another body");
    assert_eq!(post(String::new()).await.unwrap().status(), 401, "or with none");
    assert_eq!(host.broker.hub_stats().counters.published, 0, "nothing was stored");
    assert_eq!(post(body).await.unwrap().status(), 200, "the body that was signed");
    assert_eq!(host.broker.hub_stats().counters.published, 1);
}
