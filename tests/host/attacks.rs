//! Attacks on tenant isolation, tried as an attacker would, kept as tests: each one
//! failed before its fix.

use serde_json::{json, Value};
use sse_tests::*;

/// Opens a `beta-inc` stream and publishes to `beta-inc`, so the host holds numbers that
/// only `beta-inc` (and super-admins) may see.
async fn beta_is_busy(host: &TestHost) -> SseStream {
    let mut beta = host.stream("beta-inc", &["dashboard-updates"]).await;
    beta.next_event().await;
    host.publish(
        "beta-inc",
        "dashboard-updates",
        "dashboard-update",
        json!({"secret": 1}),
    )
    .await;
    beta.next_event().await;
    beta
}

fn assert_sees_nothing_of_beta(stats: &Value) {
    let text = stats.to_string();
    assert!(!text.contains("beta"), "another company's name leaked: {text}");
    assert_eq!(stats["totalConnections"], 0, "{text}");
    assert_eq!(stats["connectionsByChannel"], json!({}), "{text}");
    assert_eq!(stats["historySize"], 0, "{text}");
    assert_eq!(stats["counters"]["published"], 0, "{text}");
    assert_eq!(stats["counters"]["streamsOpened"], 0, "{text}");
    assert!(
        stats.get("backend").is_none(),
        "host internals are for super-admins: {text}"
    );
}

async fn admin_stats_are_tenant_scoped(host: &TestHost) {
    let _beta = beta_is_busy(host).await;
    assert_sees_nothing_of_beta(&host.company_stats("acme-corp").await);
    // acme-corp's own activity is what its admin sees.
    let mut acme = host.stream("acme-corp", &["report-updates"]).await;
    acme.next_event().await;
    host.publish("acme-corp", "report-updates", "report-ready", json!(1))
        .await;
    let mine = host.company_stats("acme-corp").await;
    assert_eq!(mine["totalConnections"], 1, "{mine}");
    assert_eq!(mine["connectionsByCompany"], json!({"acme-corp": 1}), "{mine}");
    assert_eq!(mine["connectionsByChannel"], json!({"report-updates": 1}), "{mine}");
    assert_eq!(mine["counters"]["published"], 1, "{mine}");
    // Only the super-admin role sees every company and the backend.
    let all = host.stats().await;
    assert_eq!(
        all["connectionsByCompany"],
        json!({"acme-corp": 1, "beta-inc": 1}),
        "{all}"
    );
    assert_eq!(all["counters"]["published"], 2, "{all}");
    assert_eq!(all["backend"]["kind"], "memory", "{all}");
}

#[tokio::test]
async fn an_admin_sees_only_its_own_company_in_stats() {
    admin_stats_are_tenant_scoped(&TestHost::start().await).await;
}

#[tokio::test]
async fn an_admin_sees_only_its_own_company_in_stats_through_the_embedded_edge() {
    admin_stats_are_tenant_scoped(&TestHost::start_with(wasm_config()).await).await;
}

#[tokio::test]
async fn an_admin_token_without_a_company_sees_nothing() {
    let host = TestHost::start().await;
    let _beta = beta_is_busy(&host).await;
    let no_company = token_with(json!({"sub": "x", "role": "ADMIN"}), 600);
    let stats = host.get_json("/sse/stats", &no_company).await;
    assert_sees_nothing_of_beta(&stats);
}

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

#[tokio::test]
async fn one_identity_in_every_mode_whatever_its_characters() {
    let native = TestHost::start().await;
    let wasm = TestHost::start_with(wasm_config()).await;
    let _beta = beta_is_busy(&wasm).await;
    let unicode = token_with(
        json!({"sub": "José 😀, x", "company_id": "acme", "role": "VIEWER"}),
        600,
    );
    for host in [&native, &wasm] {
        let res = host.open_stream(&unicode, "acme", &["dashboard-updates"], None).await;
        assert_eq!(res.status(), 200, "a non-ASCII sub streams on every edge");
    }
    // A role holding the edge's list separator never becomes two roles: the token is
    // refused (and the identity headers would encode it as one role anyway).
    let smuggler = token_with(
        json!({"sub": "s", "company_id": "acme", "roles": ["ADMIN", "x,SUPER_ADMIN"]}),
        600,
    );
    for host in [&native, &wasm] {
        let res = host
            .client
            .get(host.url("/sse/stats"))
            .bearer_auth(&smuggler)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let acme = wasm.company_stats("acme").await.to_string();
    assert!(!acme.contains("beta"), "{acme}");
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

/// Reads until the host closes the connection; fails the test if it has not within the
/// patience (far above the 1 s head timeout these hosts use, far below their 30 s default).
async fn closed_by_host(mut sock: tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a 408 or 400 first is fine
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open");
}

async fn connect_and_send(host: &TestHost, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    if !bytes.is_empty() {
        sock.write_all(bytes).await.unwrap();
    }
    sock
}

fn head_limits(timeout_secs: u64, max_handshaking: usize, per_peer: usize) -> sse_host::HostConfig {
    let mut file = sse_host::FileConfig {
        listen: "127.0.0.1:0".into(),
        ..sse_host::FileConfig::default()
    };
    file.http.head_timeout_secs = timeout_secs;
    file.http.max_handshaking = max_handshaking;
    file.http.max_handshaking_per_peer = per_peer;
    file.build(Some(policy_json(false).to_string())).unwrap()
}

#[tokio::test]
async fn silent_trickling_and_half_sent_heads_are_dropped_at_one_deadline() {
    let host = TestHost::start_with(head_limits(1, 4096, 256)).await;
    let attempts: [(&str, &[u8]); 7] = [
        ("silent", b""),
        ("one byte of the h2 preface", b"P"),
        ("most of the h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n"),
        (
            "the h2 preface, then no request (idle h2c)",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
        ("part of a stream request line", b"GET /sse/str"),
        (
            "a stream head without its end",
            b"GET /sse/stream?companyId=acme HTTP/1.1\r\nhost: x\r\n",
        ),
        (
            "another head without its end",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ",
        ),
    ];
    let mut socks = Vec::new();
    for (what, bytes) in attempts {
        socks.push((what, connect_and_send(&host, bytes).await));
    }
    for (what, sock) in socks {
        closed_by_host(sock, what).await;
    }
    let res = host.client.get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the host serves on");
}

/// Connects to `host` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(host: &TestHost, from: [u8; 4], bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut sock = socket.connect(host.addr).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    sock
}

#[tokio::test]
async fn one_peer_cannot_take_every_handshake_place() {
    let host = TestHost::start_with(head_limits(30, 8, 4)).await;
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(connect_from(&host, [127, 0, 0, 2], b"P").await);
    }
    closed_by_host(
        connect_from(&host, [127, 0, 0, 2], b"").await,
        "a fifth from the same peer",
    )
    .await;
    // Another address still gets in and is served.
    let mut other = connect_from(&host, [127, 0, 0, 3], b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut reply = [0u8; 12];
    tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read_exact(&mut other, &mut reply))
        .await
        .expect("a reply")
        .unwrap();
    assert_eq!(&reply, b"HTTP/1.1 200");
}

#[tokio::test]
async fn connections_without_a_request_are_capped() {
    let host = TestHost::start_with(head_limits(30, 4, 4)).await;
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(connect_and_send(&host, b"P").await);
    }
    // The fifth is closed at once, long before the 30 s head timeout.
    closed_by_host(connect_and_send(&host, b"").await, "the fifth handshake").await;
    drop(holders); // their permits come back as they close
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match host.client.get(host.url("/healthz")).send().await {
            Ok(res) if res.status() == 200 => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "served again once they left"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn long_polls_hold_connection_slots_like_streams() {
    let host = TestHost::start().await; // max_connections_per_company: 5
    let poll = |wait: u32| {
        let (client, url) = (
            host.client.clone(),
            host.url(&format!(
                "/sse/poll?companyId=acme&channel=dashboard-updates&wait={wait}"
            )),
        );
        async move {
            client
                .get(url)
                .bearer_auth(token("acme", "VIEWER"))
                .send()
                .await
                .unwrap()
        }
    };
    let waiting: Vec<_> = (0..5).map(|_| tokio::spawn(poll(30))).collect();
    host.wait_for_stats("five long polls to hold slots", |s| {
        s["connectionsByCompany"]["acme"] == 5
    })
    .await;
    let refused = poll(30).await;
    assert_eq!(refused.status(), 429, "a sixth waiter");
    assert_eq!(poll(0).await.status(), 200, "a poll that does not wait takes no slot");
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 429, "nor a stream");
    let id = host.publish("acme", "dashboard-updates", "x", json!(1)).await;
    for w in waiting {
        let body: Value = w.await.unwrap().json().await.unwrap();
        assert_eq!(body["events"][0]["id"], id.as_str());
    }
    host.wait_for_stats("the slots to come back", |s| s["totalConnections"] == 0)
        .await;
}

/// `company`'s slot count in the embedded filter's shared data.
fn filter_slots(host: &TestHost, company: &str) -> u32 {
    let edge = host.state.edge.as_ref().expect("a wasm edge");
    let shard = edge
        .shared_data(0, &sse_policy::slots::shard_key(company))
        .unwrap_or_default();
    sse_policy::slots::count(&shard, company)
}

#[tokio::test]
async fn filter_slots_stay_exact_when_a_vm_dies_under_live_streams() {
    let host = TestHost::start_with(wasm_config()).await; // 2 VMs, round robin
    let mut acme = Vec::new();
    for _ in 0..3 {
        let mut s = host.stream("acme", &["dashboard-updates"]).await;
        s.next_event().await;
        acme.push(s);
    }
    let mut beta = Vec::new();
    for _ in 0..2 {
        let mut s = host.stream("beta-inc", &["dashboard-updates"]).await;
        s.next_event().await;
        beta.push(s);
    }
    assert_eq!((filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")), (3, 2));
    // Both VMs hold streams of both companies; one dies as a trap would kill it.
    host.state.edge.as_ref().unwrap().replace_vm(0, 0);
    acme.pop();
    beta.clear();
    host.wait_for_stats("three streams to end", |s| s["totalConnections"] == 2)
        .await;
    assert_eq!(
        (filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")),
        (2, 0),
        "every company's count is its live streams"
    );
    // The edge still admits (a fresh VM) and counts new streams.
    let mut again = host.stream("beta-inc", &["dashboard-updates"]).await;
    again.next_event().await;
    assert_eq!(filter_slots(&host, "beta-inc"), 1);
    drop((acme, again));
    host.wait_for_stats("every stream to end", |s| s["totalConnections"] == 0)
        .await;
    assert_eq!((filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")), (0, 0));
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
async fn absolute_form_and_bodies_on_the_stream_path_change_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = TestHost::start().await;
    let read_all = |mut sock: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    // Absolute form, no token: refused like the origin form.
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    sock.write_all(b"GET http://evil.test/sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\nhost: evil.test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_all(sock).await;
    assert!(reply.starts_with("HTTP/1.1 401 "), "{reply}");
    // A stream request with a body and a request smuggled behind it: the stream is served,
    // the connection closes after it, and the second request is never answered.
    let smuggled = format!(
        "GET /sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 60\r\n\r\nGET /sse/stats HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
        token("acme", "VIEWER"),
        token("ops", "SUPER_ADMIN")
    );
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    sock.write_all(smuggled.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, sock.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 200 ") && head.contains("text/event-stream"),
        "{head}"
    );
    drop(sock);
    host.wait_for_stats("the stream to end", |s| s["totalConnections"] == 0)
        .await;
    assert!(
        !head.contains("totalConnections"),
        "the smuggled request was not answered: {head}"
    );
}
