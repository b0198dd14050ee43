//! `edge-bench`: what a policy decision costs under the embedded wasmtime edge, next to
//! the same policy called natively, for HS256 and ES256 tokens, cold (every signature
//! checked: `jwt.cache_size` 0) and warm (the same token again: the verified-token cache),
//! and for the worst-case queries an attacker can send (the longest accepted query, built
//! for the most work).
//!
//! Run with: `plugin/build.sh && cargo build --release -p sse-tests && $CARGO_TARGET_DIR/release/edge-bench [ITERATIONS]`

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;
use sse_host::edge::{HeaderMap, Verdict};
use sse_policy::cache::TokenCache;
use sse_policy::{decide, decide_cached, Decision, PolicyConfig, Request};
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
    let mut cold_policy = policy.clone();
    cold_policy["jwt"]["cache_size"] = json!(0);
    let cold = filter_edge(1, |p| *p = cold_policy).expect("load the filter (run plugin/build.sh)");
    let warm = filter_edge(1, |p| *p = policy.clone()).expect("load the filter");
    let mut cache = TokenCache::new(native.jwt.cache_size);
    // Poll requests take no connection slot, so every iteration is an admitted request
    // with the full filter lifecycle: create, request headers, log, done, delete.
    let target = "/sse/poll?companyId=acme&channel=dashboard-updates";
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    println!("edge-bench: {iterations} decisions each");
    for (alg, tok) in [("HS256", token("acme", "VIEWER")), ("ES256", es_token)] {
        let auth = format!("Bearer {tok}");
        let run_wasm = |edge: &sse_host::edge::WasmEdge| {
            per_op(iterations, || {
                let headers: HeaderMap = vec![
                    (b":method".to_vec(), b"GET".to_vec()),
                    (b":path".to_vec(), target.as_bytes().to_vec()),
                    (b":authority".to_vec(), b"bench".to_vec()),
                    (b"authorization".to_vec(), auth.as_bytes().to_vec()),
                ];
                let (verdict, contexts) = edge.on_request(headers, false, None, 1).expect("filter runs");
                assert!(matches!(verdict, Verdict::Forward(_)));
                drop(contexts);
            })
        };
        let native_cold = per_op(iterations, || {
            let req = Request::new("GET", target).with_authorization(Some(auth.as_bytes()));
            assert!(matches!(decide(&native, &req, now()), Decision::Allow(_)));
        });
        let native_warm = per_op(iterations, || {
            let req = Request::new("GET", target).with_authorization(Some(auth.as_bytes()));
            assert!(matches!(
                decide_cached(&native, &mut cache, &req, now()),
                Decision::Allow(_)
            ));
        });
        let (wasm_cold, wasm_warm) = (run_wasm(&cold), run_wasm(&warm));
        for (what, native_ns, wasm_ns) in [("cold", native_cold, wasm_cold), ("warm", native_warm, wasm_warm)] {
            println!(
                "{alg} {what}: native decide {:>8.1} µs   wasm filter (full request lifecycle) {:>8.1} µs   ratio {:.2}x",
                native_ns / 1000.0,
                wasm_ns / 1000.0,
                wasm_ns / native_ns
            );
        }
    }
    identity_cost(&native, iterations, now());
    let edge = cold;
    let auth = format!("Bearer {}", token("acme", "VIEWER"));
    for (what, target) in worst_case_queries() {
        let native_ns = per_op(iterations / 10, || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let req = Request::new("GET", &target).with_authorization(Some(auth.as_bytes()));
            assert!(matches!(decide(&native, &req, now), Decision::Deny(_)));
        });
        let wasm_ns = per_op(iterations / 10, || {
            let headers: HeaderMap = vec![
                (b":method".to_vec(), b"GET".to_vec()),
                (b":path".to_vec(), target.as_bytes().to_vec()),
                (b":authority".to_vec(), b"bench".to_vec()),
                (b"authorization".to_vec(), auth.as_bytes().to_vec()),
            ];
            let (verdict, _) = edge.on_request(headers, false, None, 1).expect("filter runs");
            assert!(!matches!(verdict, Verdict::Forward(_)), "{what} is refused");
        });
        println!(
            "refused {what} ({} B query): native {:>8.1} µs   wasm filter {:>8.1} µs",
            target.len(),
            native_ns / 1000.0,
            wasm_ns / 1000.0
        );
    }
}

/// What the host spends re-checking the identity its own in-process filter signed (edge
/// mode `wasm`): signing and verifying the `x-sse-*` headers of a stream request.
fn identity_cost(config: &PolicyConfig, iterations: u32, now: u64) {
    use sse_policy::identity;
    let target = "/sse/stream?companyId=acme&channel=dashboard-updates";
    let who = sse_policy::Identity {
        company: "acme".into(),
        subject: "user-1".into(),
        roles: vec!["VIEWER".into()],
        expires_at: Some(now + 600),
        super_admin: false,
        token_id: String::new(),
        issued_at: None,
    };
    let channels = vec!["dashboard-updates".to_owned()];
    let headers = identity::sign(&config.edge.secret, "GET", target, &who, &channels, b"", now);
    let verify_ns = per_op(iterations, || {
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert!(identity::verify(config, "GET", target, header, now).is_ok());
    });
    let sign_ns = per_op(iterations, || {
        assert!(!identity::sign(&config.edge.secret, "GET", target, &who, &channels, b"", now).is_empty());
    });
    println!(
        "identity headers (native): sign {:>6.2} µs   verify {:>6.2} µs (the host's check in wasm mode)",
        sign_ns / 1000.0,
        verify_ns / 1000.0
    );
}

/// Streams whose queries make the policy work hardest before it refuses them: as many
/// distinct channels as fit (the dedupe the policy once did in O(n^2)), the most
/// duplicates of a full list (every value compared with the whole list), and a query
/// one byte over the limit.
fn worst_case_queries() -> Vec<(&'static str, String)> {
    let fill = |values: &mut dyn Iterator<Item = String>| {
        let mut target = "/sse/stream?companyId=acme".to_owned();
        for v in values {
            if target.len() + v.len() + 10 > sse_policy::MAX_QUERY_BYTES {
                break;
            }
            target.push_str("&channel=");
            target.push_str(&v);
        }
        target
    };
    let distinct = fill(&mut (0..).map(|i| format!("c{i}")));
    let duplicates = fill(&mut (0..).map(|i| format!("dup-channel-{}", i.min(7))));
    let over = format!(
        "/sse/stream?companyId=acme&pad={}",
        "x".repeat(sse_policy::MAX_QUERY_BYTES)
    );
    vec![
        ("distinct channels", distinct),
        ("duplicated channels", duplicates),
        ("over-long query", over),
    ]
}
