//! The host's own TLS: curl streams over HTTP/2 and HTTP/1.1 (ALPN), a rotated
//! certificate reaches new handshakes while open streams go on, bad pairs stop the host
//! before it binds with the reason, and a client that stalls its handshake is dropped.

use std::time::Duration;

use serde_json::value::RawValue;
use sse_tests::node::host_bin;
use sse_tests::tls::{connect, connector, Curl, DevCert};
use sse_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn tls_host(cert: &DevCert, reload_check: Duration) -> TestHost {
    let mut cfg = config(false);
    cfg.tls = Some(cert.settings(reload_check));
    cfg.http.head_timeout = Duration::from_secs(2);
    TestHost::start_with(cfg).await
}

async fn publish(host: &TestHost, n: u32) -> String {
    let data = RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap();
    host.broker
        .publish("acme", "dashboard-updates", "dashboard-update", data)
        .await
        .unwrap()
}

#[tokio::test]
async fn curl_streams_over_tls_with_http2_and_http11() {
    let dir = TempDir::new("tls-curl");
    let cert = DevCert::new(&dir.0, "host");
    let host = tls_host(&cert, Duration::ZERO).await;
    for (version, status) in [("--http2", "HTTP/2 200"), ("--http1.1", "HTTP/1.1 200")] {
        let mut curl = Curl::stream(host.addr.port(), &cert.cert, version);
        let head = curl.until("event: connected").await;
        assert!(head[0].starts_with(status), "{version}: {head:?}");
        let id = publish(&host, 1).await;
        curl.until(&format!("id: {id}")).await;
        curl.stop().await;
        // The client left: its stream (and company slot) is gone, over both paths.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while host.broker.hub_stats().total_connections > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{version}: the stream outlived its client"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let metrics = host.api.client.get(host.api.url("/metrics")).send().await;
    assert!(metrics.is_err(), "plain HTTP to the TLS port gets no answer");
    let served = |protocol| {
        let label = sse_host::metrics::ConnectionLabel { protocol, tls: "true" };
        host.state.metrics.connections.get_or_create(&label).get()
    };
    assert_eq!(
        (served("h2"), served("h1_fast"), served("h1")),
        (1, 1, 0),
        "one connection each, as ALPN chose; the HTTP/1.1 stream took the fast path"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_rotated_certificate_reaches_new_handshakes_while_open_streams_go_on() {
    let dir = TempDir::new("tls-rotate");
    let first = DevCert::new(&dir.0, "host");
    let host = tls_host(&first, Duration::from_secs(1)).await;
    let mut curl = Curl::stream(host.addr.port(), &first.cert, "--http2");
    curl.until("event: connected").await;

    // The deployment replaces the files (as a secret mount or certbot does).
    let second = DevCert::new(&dir.0, "next");
    std::fs::copy(&second.key, &first.key).unwrap();
    std::fs::copy(&second.cert, &first.cert).unwrap();
    let trusts_second = connector(&second.der, &[b"http/1.1"]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while connect(host.addr, &trusts_second).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connect(host.addr, &connector(&first.der, &[b"http/1.1"]))
            .await
            .is_err(),
        "new handshakes no longer get the old certificate"
    );
    let id = publish(&host, 2).await;
    curl.until(&format!("id: {id}")).await;
    curl.stop().await;
    host.stop().await;
}

#[tokio::test]
async fn a_client_that_stalls_its_handshake_is_dropped_at_the_head_deadline() {
    let dir = TempDir::new("tls-stall");
    let cert = DevCert::new(&dir.0, "host");
    let host = tls_host(&cert, Duration::ZERO).await;
    let mut tcp = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let opened = tokio::time::Instant::now();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap(); // a ClientHello's first bytes
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
        .await
        .expect("closed by the host, not left open")
        .unwrap_or(0);
    assert_eq!(n, 0, "no answer to a half-sent handshake");
    assert!(
        opened.elapsed() >= Duration::from_millis(1500),
        "held until the 2 s head deadline, not refused at once"
    );
    // A finished handshake, then half a stream request (the fast path's head read).
    let mut tls = connect(host.addr, &connector(&cert.der, &[b"http/1.1"])).await.unwrap();
    let opened = tokio::time::Instant::now();
    tls.write_all(b"GET /sse/stream?companyId=ac").await.unwrap();
    let n = tokio::time::timeout(PATIENCE, tls.read(&mut buf))
        .await
        .expect("closed by the host, not left open")
        .unwrap_or(0);
    assert_eq!(n, 0, "no answer to a half-sent head");
    assert!(opened.elapsed() >= Duration::from_millis(1500));
    host.stop().await;
}

#[tokio::test]
async fn http2_connections_from_one_address_are_bounded_for_their_whole_life() {
    let dir = TempDir::new("tls-peers");
    let cert = DevCert::new(&dir.0, "host");
    let mut cfg = config(false);
    cfg.tls = Some(cert.settings(Duration::ZERO));
    cfg.http.max_connections_per_peer = 2;
    let host = TestHost::start_with(cfg).await;
    let client = connector(&cert.der, &[b"h2"]);
    // Two connections that made a request and stay open (an h2 connection outlives it).
    let mut held = Vec::new();
    for _ in 0..2 {
        let tls = connect(host.addr, &client).await.unwrap();
        let (mut h2, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(format!("https://localhost:{}/healthz", host.addr.port()))
            .body(())
            .unwrap();
        let (res, _) = h2.send_request(req, true).unwrap();
        assert_eq!(res.await.unwrap().status(), 200);
        held.push(h2);
    }
    let third = connect(host.addr, &client).await;
    let refused = match third {
        Err(_) => true,
        Ok(mut tls) => tokio::time::timeout(PATIENCE, tls.read(&mut [0u8; 16]))
            .await
            .is_ok_and(|r| r.map_or(true, |n| n == 0)),
    };
    assert!(refused, "a third connection from the same address is closed");
    drop(held);
    host.stop().await;
}

/// `sse-host check-config` and `serve` on a TOML whose `[tls]` names `cert` and `key`.
fn run_host(dir: &std::path::Path, cert: &std::path::Path, key: &std::path::Path, cmd: &str) -> (i32, String) {
    std::fs::write(dir.join("policy.json"), policy_json(false).to_string()).unwrap();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\npolicy_file = \"policy.json\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    std::fs::write(dir.join("host.toml"), toml).unwrap();
    let args: &[&str] = if cmd == "serve" {
        &["serve", "--config"]
    } else {
        &["check-config"]
    };
    let out = std::process::Command::new(host_bin())
        .args(args)
        .arg(dir.join("host.toml"))
        .env("SSE_JWT_SECRET", JWT_SECRET)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn expired_or_mismatched_pairs_stop_the_host_before_it_binds() {
    let dir = TempDir::new("tls-bad");
    let good = DevCert::new(&dir.0, "good");
    let other = DevCert::new(&dir.0, "other");
    let expired = DevCert::expired(&dir.0, "expired");
    for cmd in ["check-config", "serve"] {
        let (code, err) = run_host(&dir.0, &good.cert, &other.key, cmd);
        assert_eq!(code, 78, "{cmd}: {err}");
        assert!(err.contains("tls:") && err.contains("does not match"), "{cmd}: {err}");
        let (code, err) = run_host(&dir.0, &expired.cert, &expired.key, cmd);
        assert_eq!(code, 78, "{cmd}: {err}");
        assert!(err.contains("certificate has expired"), "{cmd}: {err}");
    }
    let (code, err) = run_host(&dir.0, &good.cert, &good.key, "check-config");
    assert_eq!(code, 0, "{err}");
}
