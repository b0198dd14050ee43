//! Bounded property runs: arbitrary tokens, query strings, cookies and config JSON never
//! panic the policy, and never yield an allowed stream without a valid token.

mod support;

use proptest::prelude::*;
use sse_policy::{decide, Decision, PolicyConfig, Request, Route};
use support::*;

fn cfg() -> &'static PolicyConfig {
    static CFG: std::sync::OnceLock<PolicyConfig> = std::sync::OnceLock::new();
    CFG.get_or_init(config)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_panic_or_admit(token in ".{0,300}", query in "[ -~]{0,200}", cookie in proptest::collection::vec(any::<u8>(), 0..200), method in "(GET|POST|OPTIONS|PUT)", path in "/sse/[a-z-]{0,16}") {
        let cfg = cfg();
        let auth = format!("Bearer {token}");
        let target = format!("{path}?{query}");
        let req = Request::new(&method, &target).with_authorization(Some(auth.as_bytes())).with_cookie(Some(&cookie));
        if let Decision::Allow(g) = decide(cfg, &req, NOW) {
            prop_assert!(g.identity.is_none());
            prop_assert!(matches!(g.route, Route::Preflight), "{:?}", g.route);
        }
    }

    #[test]
    fn arbitrary_jws_shapes_never_panic(header in "[A-Za-z0-9_-]{0,80}", payload in "[A-Za-z0-9_-]{0,200}", sig in "[A-Za-z0-9_-]{0,120}") {
        let _ = sse_policy::jwt::verify(&format!("{header}.{payload}.{sig}"), &cfg().jwt, NOW);
    }

    #[test]
    fn arbitrary_config_json_never_panics(json in "[ -~]{0,300}") {
        let _ = PolicyConfig::from_json(&json);
    }

    #[test]
    fn mutated_valid_config_never_panics(key in "[a-z_]{1,20}", value in prop_oneof![Just(serde_json::json!(null)), Just(serde_json::json!(-1)), Just(serde_json::json!("")), Just(serde_json::json!([])), Just(serde_json::json!({}))]) {
        let mut j = config_json();
        for section in ["jwt", "limits", "tokens", "edge", "cors", "routes"] {
            j[section][key.as_str()] = value.clone();
        }
        let _ = PolicyConfig::from_json(&j.to_string());
    }
}
