//! The token cache changes how often a signature is checked, never a decision: over
//! random sequences of requests (valid, expiring, not-yet-valid, wrong-tenant and forged
//! tokens, from every algorithm) with the clock moving forward and sometimes back, under
//! two configurations each with its own cache, `decide_cached` answers exactly as
//! `decide`.

mod support;

use proptest::prelude::*;
use serde_json::json;
use sse_policy::cache::TokenCache;
use sse_policy::{decide, decide_cached, Request};
use support::*;

/// A pool of tokens around NOW: valid, expiring soon (inside and past the leeway), not
/// yet valid, another company, each algorithm, and a forged one.
fn pool() -> Vec<String> {
    let with = |exp: u64, nbf: Option<u64>, company: &str| {
        let mut c = claims(company, "VIEWER");
        c["exp"] = json!(exp);
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        c
    };
    let valid = claims("acme", "VIEWER");
    vec![
        hs256(&valid),
        hs256(&with(NOW + 5, None, "acme")),
        hs256(&with(NOW + 40, None, "acme")),
        hs256(&with(NOW + 600, Some(NOW + 60), "acme")),
        hs256(&with(NOW + 600, None, "globex")),
        sign("ES256", Some("ec1"), &valid),
        sign("RS256", Some("rsa1"), &valid),
        sse_policy::mint::hs256(
            &sse_policy::Secret::new("a-forger-secret-that-is-32-bytes-long"),
            &valid,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_decisions_equal_uncached_ones(
        steps in prop::collection::vec((0usize..8, -40i64..60, any::<bool>()), 1..60),
        capacity in 0usize..6,
    ) {
        // The second configuration accepts another issuer only: what one cached must not
        // be granted under the other.
        let mut other = config_json();
        other["jwt"]["issuers"] = json!(["https://other-idp.test"]);
        let configs = [config(), sse_policy::PolicyConfig::from_json(&other.to_string()).unwrap()];
        let mut caches = [TokenCache::new(capacity), TokenCache::new(capacity)];
        let tokens = pool();
        let mut now = NOW - 10;
        for (which, step, second) in steps {
            now = now.saturating_add_signed(step);
            let c = usize::from(second);
            let auth = format!("Bearer {}", tokens[which]);
            let req = Request::new("GET", "/sse/stream?companyId=acme&channel=dashboard-updates")
                .with_authorization(Some(auth.as_bytes()));
            prop_assert_eq!(
                decide_cached(&configs[c], &mut caches[c], &req, now),
                decide(&configs[c], &req, now),
                "token {} at {:+} under config {}", which, now as i64 - NOW as i64, c
            );
            prop_assert!(caches[c].len() <= capacity);
        }
    }
}
