//! Pages on other sites, unsigned callers and dev switches: what a browser sends on
//! its own (cookies, simple POSTs, preflights) and what reaches a host around its edge.

use serde_json::Value;
use sse_tests::*;

/// POSTs `body` to `path` the way a page on another site could: with the victim's
/// cookie (browsers attach it), or a bearer token, and a chosen content type.
async fn post(host: &TestHost, path: &str, auth: Auth<'_>, content_type: &str, body: &str) -> (u16, Value) {
    let mut req = host
        .client
        .post(host.url(path))
        .header("origin", "https://evil.test")
        .header("content-type", content_type)
        .body(body.to_owned());
    req = match auth {
        Auth::Cookie(t) => req.header("cookie", format!("sse_token={t}")),
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::None => req,
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

enum Auth<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
    None,
}

const EVENT: &str = r#"{"companyId":"acme","channel":"dashboard-updates","type":"x","data":1}"#;

#[tokio::test]
async fn a_cookie_token_never_publishes_or_reads_stats() {
    let host = TestHost::start().await;
    let publisher = token("acme", "PUBLISHER");
    let (status, body) = post(
        &host,
        "/sse/publish",
        Auth::Cookie(&publisher),
        "application/json",
        EVENT,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
    let admin = token("acme", "ADMIN");
    let res = host
        .client
        .get(host.url("/sse/stats"))
        .header("cookie", format!("sse_token={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "stats read with a cookie");
    // The cookie still opens streams: what a native EventSource sends.
    let res = host
        .client
        .get(host.url("/sse/stream?companyId=acme&channel=dashboard-updates"))
        .header("cookie", format!("sse_token={}", token("acme", "VIEWER")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(host.stats().await["counters"]["published"], 0);
}

#[tokio::test]
async fn a_publish_must_declare_json_even_with_a_valid_token() {
    let host = TestHost::start().await;
    let publisher = token("acme", "PUBLISHER");
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ] {
        let (status, body) = post(&host, "/sse/publish", Auth::Bearer(&publisher), content_type, EVENT).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (415, Some("UNSUPPORTED_MEDIA_TYPE")),
            "{content_type:?}"
        );
    }
    let (status, _) = post(
        &host,
        "/sse/publish",
        Auth::Bearer(&publisher),
        "application/json; charset=utf-8",
        EVENT,
    )
    .await;
    assert_eq!(status, 200, "JSON with parameters is JSON");
    assert_eq!(host.stats().await["counters"]["published"], 1);
}

#[tokio::test]
async fn the_dev_test_broadcast_cannot_be_posted_by_a_simple_cross_site_form() {
    let host = TestHost::start_with(config(true)).await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, _) = post(&host, "/sse/test-broadcast", Auth::None, content_type, EVENT).await;
        assert_eq!(status, 415, "{content_type}");
    }
    let (status, _) = post(&host, "/sse/test-broadcast", Auth::None, "application/json", EVENT).await;
    assert_eq!(status, 200);
    assert_eq!(host.stats().await["counters"]["published"], 1);
}

fn build(dev: bool, allow_remote: bool, listen: &str, dev_policy: bool) -> Result<sse_host::HostConfig, String> {
    let file = sse_host::FileConfig {
        listen: listen.into(),
        dev,
        dev_allow_remote: allow_remote,
        ..sse_host::FileConfig::default()
    };
    file.build(Some(policy_json(dev_policy).to_string()))
        .map_err(|e| e.to_string())
}

#[test]
fn dev_switches_stay_in_dev() {
    let err = build(false, false, "127.0.0.1:0", true).unwrap_err();
    assert!(
        err.contains("routes.dev_mode"),
        "a dev_mode policy outside --dev: {err}"
    );
    assert!(build(true, false, "127.0.0.1:0", true).is_ok());
    let err = build(true, false, "0.0.0.0:0", true).unwrap_err();
    assert!(err.contains("loopback only"), "--dev beyond loopback: {err}");
    assert!(
        build(true, true, "0.0.0.0:0", true).is_ok(),
        "unless asked for explicitly"
    );
}

#[tokio::test]
async fn a_dev_host_answers_loopback_names_only() {
    let host = TestHost::start_with(config(true)).await;
    for (name, status) in [
        ("evil.test", 403),
        ("127.0.0.1.evil.test", 403),
        ("localhost.evil.test:80", 403),
        ("localhost", 200),
        ("app.localhost:4000", 200),
        ("127.0.0.1:4000", 200),
        ("[::1]:4000", 200),
        ("192.0.2.7:4000", 200),
    ] {
        let res = host
            .client
            .get(host.url("/healthz"))
            .header("host", name)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "Host: {name}");
    }
    let production = TestHost::start().await;
    let res = production
        .client
        .get(production.url("/healthz"))
        .header("host", "sse.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a configured host serves its real names");
}

#[tokio::test]
async fn unsigned_requests_straight_to_a_host_behind_envoy_are_refused() {
    let mut cfg = config(false);
    cfg.edge = sse_host::EdgeMode::Envoy;
    let host = TestHost::start_with(cfg).await;
    let publisher = token("acme", "PUBLISHER");
    let admin = token("acme", "SUPER_ADMIN");
    let requests = [
        host.client
            .get(host.url("/sse/poll?companyId=acme&channel=dashboard-updates"))
            .bearer_auth(token("acme", "VIEWER")),
        host.client.get(host.url("/sse/stats")).bearer_auth(&admin),
        host.client
            .post(host.url("/sse/publish"))
            .bearer_auth(&publisher)
            .header("content-type", "application/json")
            .body(EVENT),
        // Identity headers a client made up: no signature, or a made-up one.
        host.client
            .get(host.url("/sse/stats"))
            .header("x-sse-company", "acme")
            .header("x-sse-role", "SUPER_ADMIN")
            .header("x-sse-edge-sig", "AAAA"),
    ];
    for req in requests {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{}", res.url());
    }
    assert_eq!(host.broker.stats().hub.counters.published, 0);
}

#[tokio::test]
async fn a_preflight_from_another_site_is_answered_without_granting_it() {
    let host = TestHost::start().await;
    for path in ["/sse/publish", "/sse/stream?companyId=acme&channel=dashboard-updates"] {
        let res = host
            .client
            .request(reqwest::Method::OPTIONS, host.url(path))
            .header("origin", "https://evil.test")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        let h = res.headers();
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{path}: no reflection: {h:?}"
        );
        assert!(h.get("access-control-allow-credentials").is_none(), "{path}: {h:?}");
        assert_eq!(
            h.get("vary").map(|v| v.to_str().unwrap()),
            Some("Origin"),
            "{path}: caches keep origins apart"
        );
    }
}

#[tokio::test]
async fn a_repeated_authorization_header_is_refused_alike_on_every_edge() {
    let native = TestHost::start().await;
    let wasm = TestHost::start_with(wasm_config()).await;
    for host in [&native, &wasm] {
        let res = host
            .client
            .get(host.url("/sse/stream?companyId=acme&channel=dashboard-updates"))
            .header("authorization", format!("Bearer {}", token("acme", "VIEWER")))
            .header("authorization", format!("Bearer {}", token("globex", "SUPER_ADMIN")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "INVALID_REQUEST");
        let health = host
            .client
            .get(host.url("/healthz"))
            .header("authorization", "a")
            .header("authorization", "b");
        assert_eq!(
            health.send().await.unwrap().status(),
            200,
            "routes without tokens do not care"
        );
    }
}
