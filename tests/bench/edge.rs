//! `edge-bench`: what a policy decision costs under the embedded wasmtime edge, next to
//! the same policy called natively, for HS256 and ES256 tokens.
//!
//! Run with: `plugin/build.sh && cargo build --release -p sse-tests && $CARGO_TARGET_DIR/release/edge-bench [ITERATIONS]`

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;
use sse_host::edge::{HeaderMap, Verdict};
use sse_policy::{decide, Decision, PolicyConfig, Request};
use sse_tests::{filter_edge, policy_json, token};

const EC_PEM: &str = include_str!("../../plugin/policy/tests/fixtures/ec-pkcs8.pem");

fn es256_setup() -> (serde_json::Value, String) {
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PEM).expect("fixture key");
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "kid": "ec1", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "bench", "company_id": "acme", "role": "VIEWER", "iss": sse_tests::ISSUER, "aud": "sse", "exp": now + 3600});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"ec1"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    (jwk, format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes())))
}

fn per_op(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f(); // warm up
    }
    let t = Instant::now();
    for _ in 0..iterations {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(iterations)
}

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let (jwk, es_token) = es256_setup();
    let mut policy = policy_json(false);
    policy["jwt"]["jwks"] = json!({"keys": [jwk]});
    let native = PolicyConfig::from_json(&policy.to_string()).expect("policy");
    let edge = filter_edge(1, |p| *p = policy.clone()).expect("load the filter (run plugin/build.sh)");
    // Poll requests take no connection slot, so every iteration is an admitted request
    // with the full filter lifecycle: create, request headers, log, done, delete.
    let target = "/sse/poll?companyId=acme&channel=dashboard-updates";
    println!("edge-bench: {iterations} decisions each");
    for (alg, tok) in [("HS256", token("acme", "VIEWER")), ("ES256", es_token)] {
        let auth = format!("Bearer {tok}");
        let native_ns = per_op(iterations, || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let req = Request::new("GET", target).with_authorization(Some(auth.as_bytes()));
            assert!(matches!(decide(&native, &req, now), Decision::Allow(_)));
        });
        let wasm_ns = per_op(iterations, || {
            let headers: HeaderMap = vec![
                (b":method".to_vec(), b"GET".to_vec()),
                (b":path".to_vec(), target.as_bytes().to_vec()),
                (b":authority".to_vec(), b"bench".to_vec()),
                (b"authorization".to_vec(), auth.as_bytes().to_vec()),
            ];
            let (verdict, contexts) = edge.on_request(headers, None, 1).expect("filter runs");
            assert!(matches!(verdict, Verdict::Forward(_)));
            drop(contexts);
        });
        println!(
            "{alg}: native decide {:>8.1} µs   wasm filter (full request lifecycle) {:>8.1} µs   ratio {:.2}x",
            native_ns / 1000.0,
            wasm_ns / 1000.0,
            wasm_ns / native_ns
        );
    }
}
