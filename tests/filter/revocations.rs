//! The filter learns revocations over proxy-wasm HTTP callouts (`proxy_http_call`),
//! answered here by the host's feed in-process, and fails closed when it cannot.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sse_host::admin::revocations::RevocationStore;
use sse_host::edge::{Verdict, WasmEdge};
use sse_policy::revocation::Revocation;
use sse_tests::*;

use crate::abi_decisions::request;

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn refresh_fast(p: &mut Value) {
    p["edge"]["revocations"] = json!({"refresh_ms": 100, "max_stale_secs": 1});
}

/// The status the filter answers a stream request with `token` (200: forwarded).
fn status(edge: &WasmEdge, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    match edge.on_request(request(STREAM, &[("authorization", &auth)]), false, None, 1) {
        Ok((Verdict::Forward(_), _)) => 200,
        Ok((Verdict::Reply(r), _)) => r.status,
        other => panic!("unexpected {other:?}"),
    }
}

/// Delivers ticks (and so callouts) until `cond`, failing after the patience.
async fn tick_until(edge: &WasmEdge, what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        edge.tick();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_vm_learns_a_revocation_on_its_next_refresh() {
    let store = Arc::new(RevocationStore::default());
    let edge = filter_edge_with(2, refresh_fast, store.clone()).unwrap();
    let leaked = token_with(
        json!({"sub": "u", "company_id": "acme", "role": "VIEWER", "jti": "leaked"}),
        600,
    );
    let fine = token_with(
        json!({"sub": "u", "company_id": "acme", "role": "VIEWER", "jti": "fine"}),
        600,
    );
    // Each VM fetched the list while it started: nothing is refused for staleness.
    assert_eq!(status(&edge, &leaked), 200);
    assert_eq!(status(&edge, &leaked), 200, "the second VM too");
    let entry = Revocation {
        company_id: "acme".into(),
        jti: Some("leaked".into()),
        subject: None,
        issued_before: None,
        until: now() + 600,
    };
    store.add(entry, now(), false).unwrap();
    // Round robin over two VMs: both must refuse, each after its own callout.
    tick_until(&edge, "both VMs to refuse the revoked token", || {
        (0..2).all(|_| status(&edge, &leaked) == 401)
    })
    .await;
    assert_eq!(status(&edge, &fine), 200, "other tokens pass");
    let denied: u64 = edge
        .metrics()
        .iter()
        .filter(|(_, m)| m.name == "sse_filter_denied_total.reason.revoked")
        .map(|(_, m)| m.value as u64)
        .sum();
    assert!(denied >= 2, "counted as revoked: {denied}");
}

#[tokio::test]
async fn a_filter_that_cannot_fetch_the_list_refuses_identified_requests() {
    // A proxy without the cluster: every callout is refused.
    let mut policy = policy_json(false);
    refresh_fast(&mut policy);
    let edge = WasmEdge::load(&sse_host::edge::WasmSettings {
        plugins: vec![sse_host::edge::PluginSpec {
            name: "sse-filter".into(),
            module: std::fs::read(filter_wasm()).unwrap(),
            configuration: policy.to_string().into_bytes(),
            upstream: None,
        }],
        vms: 1,
        limits: sse_host::edge::VmLimits::default(),
        cache_dir: sse_host::config::default_cache_dir(),
    })
    .unwrap();
    // Until its first fetch a new VM lives on the host's own check, for at most
    // max_stale_secs (1 s here); then it refuses every identified request.
    let viewer = token("acme", "VIEWER");
    assert_eq!(status(&edge, &viewer), 200, "the start-up grace");
    tick_until(&edge, "the filter to fail closed", || status(&edge, &viewer) == 503).await;
    let auth = format!("Bearer {viewer}");
    let (verdict, _) = edge
        .on_request(request(STREAM, &[("authorization", &auth)]), false, None, 1)
        .unwrap();
    let Verdict::Reply(reply) = verdict else {
        panic!("forwarded without a revocation list")
    };
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "UNAVAILABLE");
    // What needs no identity still passes: a preflight.
    let mut preflight = request(
        STREAM,
        &[("origin", "https://app.test"), ("access-control-request-method", "GET")],
    );
    preflight[0].1 = b"OPTIONS".to_vec();
    let (verdict, _) = edge.on_request(preflight, false, None, 1).unwrap();
    assert!(matches!(verdict, Verdict::Reply(r) if r.status == 204));
}
