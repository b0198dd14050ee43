//! Envoy's TLS listener (ALPN h2, http/1.1) with the shipped envoy.yaml, the hop from
//! Envoy to a host serving its own TLS (envoy/upstream-tls.yaml), and rotation of the
//! listener's certificate through SDS from files.

use std::time::Duration;

use serde_json::json;
use sse_host::EdgeMode;
use sse_tests::envoy::{Envoy, EnvoyOptions};
use sse_tests::tls::{connect, connector, Curl, DevCert};
use sse_tests::*;

async fn publish(host: &TestHost, n: u32) -> String {
    let raw = serde_json::value::to_raw_value(&json!({ "n": n })).unwrap();
    host.broker
        .publish("acme", "dashboard-updates", "dashboard-update", raw)
        .await
        .unwrap()
}

fn envoy_mode_config() -> sse_host::HostConfig {
    let mut cfg = config(false);
    cfg.edge = EdgeMode::Envoy;
    cfg
}

#[tokio::test]
async fn curl_streams_through_envoys_tls_listener_over_h2_and_http11() {
    let host = TestHost::start_with(envoy_mode_config()).await;
    let envoy = Envoy::start(host.addr, &policy_json(false)).await;
    for (version, status) in [("--http2", "HTTP/2 200"), ("--http1.1", "HTTP/1.1 200")] {
        let mut curl = Curl::stream(envoy.tls_addr.port(), &envoy.cert.cert, version);
        let head = curl.until("event: connected").await;
        assert!(head[0].starts_with(status), "{version}: {head:?}\n{}", envoy.log());
        let id = publish(&host, 1).await;
        curl.until(&format!("id: {id}")).await;
        curl.stop().await;
    }
    assert!(
        envoy.stat("http.sse_tls.downstream_cx_ssl_total").await >= 2,
        "both over TLS"
    );
    let h2 = envoy.stat("http.sse_tls.downstream_cx_http2_total").await;
    let h1 = envoy.stat("http.sse_tls.downstream_cx_http1_total").await;
    assert!(h2 >= 1 && h1 >= 1, "h2 {h2}, http/1.1 {h1}");
}

#[tokio::test]
async fn envoy_reaches_a_host_serving_tls_over_h2() {
    let dir = TempDir::new("envoy-upstream-tls");
    let host_cert = DevCert::new(&dir.0, "host");
    let mut cfg = envoy_mode_config();
    cfg.tls = Some(host_cert.settings(Duration::ZERO));
    let host = TestHost::start_with(cfg).await;
    let options = EnvoyOptions {
        upstream_tls: Some(host_cert.cert.clone()),
    };
    let envoy = Envoy::start_with(host.addr, &policy_json(false), options).await;
    let mut curl = Curl::stream(envoy.tls_addr.port(), &envoy.cert.cert, "--http2");
    curl.until("event: connected").await;
    let id = publish(&host, 2).await;
    curl.until(&format!("id: {id}")).await;
    curl.stop().await;
    let label = sse_host::metrics::ConnectionLabel {
        protocol: "h2",
        tls: "true",
    };
    assert!(
        host.state.metrics.connections.get_or_create(&label).get() >= 1,
        "Envoy's hop is h2 over TLS"
    );
    assert_eq!(
        host.state
            .metrics
            .connections
            .get_or_create(&sse_host::metrics::ConnectionLabel {
                protocol: "h2",
                tls: "false"
            })
            .get(),
        0,
        "nothing reached the host in plain text"
    );
}

#[tokio::test]
async fn a_certificate_renamed_into_place_reaches_new_handshakes_without_a_restart() {
    let host = TestHost::start_with(envoy_mode_config()).await;
    let envoy = Envoy::start(host.addr, &policy_json(false)).await;
    let mut curl = Curl::stream(envoy.tls_addr.port(), &envoy.cert.cert, "--http2");
    curl.until("event: connected").await;
    // A new pair written beside, then renamed over the served files.
    let tls_dir = envoy.cert.cert.parent().unwrap().to_path_buf();
    let next = DevCert::new(&tls_dir, "next");
    std::fs::rename(&next.key, tls_dir.join("key.pem")).unwrap();
    std::fs::rename(&next.cert, tls_dir.join("cert.pem")).unwrap();
    let trusts_next = connector(&next.der, &[b"h2"]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while connect(envoy.tls_addr, &trusts_next).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Envoy never served the new certificate:\n{}",
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = publish(&host, 3).await;
    curl.until(&format!("id: {id}")).await;
    curl.stop().await;
}
