//! Route and authorization rules, one test per rule and per rejection.

mod support;

use serde_json::json;
use sse_policy::jwt::TokenError;
use sse_policy::{decide, may_publish_to, Decision, DenyReason, ErrorCode, PolicyConfig, Request, Route, TokenSource};
use support::*;

/// Decides a request; a POST says its body is JSON, as publishers must.
fn run(cfg: &PolicyConfig, method: &str, target: &str, token: Option<&str>) -> Decision {
    let auth = token.map(|t| format!("Bearer {t}"));
    let json = (method == "POST").then_some(&b"application/json"[..]);
    let req = Request::new(method, target)
        .with_authorization(auth.as_deref().map(str::as_bytes))
        .with_content_type(json);
    decide(cfg, &req, NOW)
}

fn deny(d: Decision) -> DenyReason {
    match d {
        Decision::Deny(r) => r,
        Decision::Allow(g) => panic!("expected a denial, got {g:?}"),
    }
}

fn allow(d: Decision) -> sse_policy::Grant {
    match d {
        Decision::Allow(g) => g,
        Decision::Deny(r) => panic!("expected allow, got {r:?}"),
    }
}

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

#[test]
fn tenant_token_opens_its_own_stream_and_poll() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    let g = allow(run(&cfg, "GET", STREAM, Some(&t)));
    assert_eq!(g.route, Route::Stream);
    assert_eq!(g.channels, vec!["dashboard-updates"]);
    assert_eq!(g.token_source, Some(TokenSource::Header));
    let id = g.identity.unwrap();
    assert_eq!(
        (id.company.as_str(), id.subject.as_str(), id.super_admin),
        ("acme", "user-1", false)
    );
    let g = allow(run(
        &cfg,
        "GET",
        "/sse/poll?companyId=acme&channel=report-updates&since=0",
        Some(&t),
    ));
    assert_eq!(g.route, Route::Poll);
}

#[test]
fn missing_or_bad_token_is_401() {
    let cfg = config();
    let r = deny(run(&cfg, "GET", STREAM, None));
    assert_eq!(r, DenyReason::Token(TokenError::Missing));
    assert_eq!(r.code().status(), 401);
    assert_eq!(
        deny(run(&cfg, "GET", STREAM, Some("garbage"))).code(),
        ErrorCode::Unauthorized
    );
}

#[test]
fn other_company_is_403_unless_super_admin() {
    let cfg = config();
    let t = hs256(&claims("globex", "VIEWER"));
    assert_eq!(deny(run(&cfg, "GET", STREAM, Some(&t))), DenyReason::CompanyMismatch);
    let t = hs256(&claims("globex", "SUPER_ADMIN"));
    assert!(allow(run(&cfg, "GET", STREAM, Some(&t))).identity.unwrap().super_admin);
}

#[test]
fn company_ids_that_only_look_alike_are_different_tenants() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    for other in ["ACME", "acme_", "acme-corp", "acm"] {
        let target = format!("/sse/stream?companyId={other}&channel=dashboard-updates");
        assert_eq!(
            deny(run(&cfg, "GET", &target, Some(&t))),
            DenyReason::CompanyMismatch,
            "{other}"
        );
    }
}

#[test]
fn invalid_company_id_is_400() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    let long = "a".repeat(65);
    for bad in ["", "acme%20corp", "acme/..", "acme%0d%0a", long.as_str()] {
        let target = format!("/sse/stream?companyId={bad}&channel=dashboard-updates");
        let r = deny(run(&cfg, "GET", &target, Some(&t)));
        assert_eq!(
            (r.code(), r.code().status()),
            (ErrorCode::InvalidCompanyId, 400),
            "{bad:?}"
        );
    }
    let r = deny(run(&cfg, "GET", "/sse/stream?channel=dashboard-updates", Some(&t)));
    assert_eq!(r, DenyReason::InvalidCompanyId);
    let r = deny(run(
        &cfg,
        "GET",
        "/sse/stream?companyId=acme&companyId=b&channel=dashboard-updates",
        Some(&t),
    ));
    assert_eq!(r, DenyReason::InvalidCompanyId, "ambiguous duplicate companyId");
}

#[test]
fn channel_must_be_whitelisted_present_and_bounded() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    for target in [
        "/sse/stream?companyId=acme",
        "/sse/stream?companyId=acme&channel=secret-channel",
        "/sse/stream?companyId=acme&channel=Dashboard-Updates",
        "/sse/stream?companyId=acme&channel=dashboard-updates&channel=nope",
        "/sse/stream?companyId=acme&channel=dashboard-updates&channel=evidence-updates&channel=report-updates&channel=audit-log",
    ] {
        let r = deny(run(&cfg, "GET", target, Some(&t)));
        assert_eq!((r.code(), r.code().status()), (ErrorCode::InvalidChannel, 400), "{target}");
    }
}

#[test]
fn multi_channel_checks_every_channel_and_dedupes() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    let target =
        "/sse/stream?companyId=acme&channel=dashboard-updates&channel=report-updates&channel=dashboard-updates";
    assert_eq!(
        allow(run(&cfg, "GET", target, Some(&t))).channels,
        vec!["dashboard-updates", "report-updates"]
    );
    let target = "/sse/stream?companyId=acme&channel=dashboard-updates&channel=audit-log";
    assert_eq!(deny(run(&cfg, "GET", target, Some(&t))), DenyReason::ChannelForbidden);
    let auditor = hs256(&claims("acme", "AUDITOR"));
    assert!(matches!(run(&cfg, "GET", target, Some(&auditor)), Decision::Allow(_)));
}

#[test]
fn stats_needs_an_admin_role() {
    let cfg = config();
    let viewer = hs256(&claims("acme", "VIEWER"));
    assert_eq!(
        deny(run(&cfg, "GET", "/sse/stats", Some(&viewer))),
        DenyReason::RoleForbidden
    );
    assert_eq!(DenyReason::RoleForbidden.code().status(), 403);
    for role in ["ADMIN", "SUPER_ADMIN"] {
        let t = hs256(&claims("acme", role));
        assert_eq!(allow(run(&cfg, "GET", "/sse/stats", Some(&t))).route, Route::Stats);
    }
}

#[test]
fn publish_needs_publisher_role_and_is_scoped() {
    let cfg = config();
    let viewer = hs256(&claims("acme", "VIEWER"));
    assert_eq!(
        deny(run(&cfg, "POST", "/sse/publish", Some(&viewer))),
        DenyReason::RoleForbidden
    );
    let publisher = hs256(&claims("acme", "PUBLISHER"));
    let id = allow(run(&cfg, "POST", "/sse/publish", Some(&publisher)))
        .identity
        .unwrap();
    assert!(may_publish_to(&id, "acme"));
    assert!(!may_publish_to(&id, "globex"));
    let root = hs256(&claims("", "SUPER_ADMIN"));
    let id = allow(run(&cfg, "POST", "/sse/publish", Some(&root))).identity.unwrap();
    assert!(may_publish_to(&id, "globex"));
    let mut no_company = claims("x", "PUBLISHER");
    no_company.as_object_mut().unwrap().remove("company_id");
    assert_eq!(
        deny(run(&cfg, "POST", "/sse/publish", Some(&hs256(&no_company)))),
        DenyReason::RoleForbidden
    );
}

#[test]
fn test_broadcast_exists_only_in_dev_mode() {
    let cfg = config();
    assert_eq!(
        deny(run(&cfg, "POST", "/sse/test-broadcast", None)),
        DenyReason::NotFound
    );
    let mut json = config_json();
    json["routes"]["dev_mode"] = json!(true);
    let dev = PolicyConfig::from_json(&json.to_string()).unwrap();
    let g = allow(run(&dev, "POST", "/sse/test-broadcast", None));
    assert_eq!((g.route, g.identity), (Route::TestBroadcast, None));
}

#[test]
fn unknown_routes_and_methods_under_the_prefix_are_404() {
    let cfg = config();
    let t = hs256(&claims("acme", "ADMIN"));
    for (m, p) in [
        ("GET", "/sse/"),
        ("GET", "/sse"),
        ("GET", "/sse/streams"),
        ("POST", "/sse/stream"),
        ("GET", "/sse/publish"),
        ("DELETE", "/sse/stats"),
    ] {
        let r = deny(run(&cfg, m, p, Some(&t)));
        assert_eq!((r.code(), r.code().status()), (ErrorCode::NotFound, 404), "{m} {p}");
    }
}

#[test]
fn paths_outside_the_prefix_and_preflights_pass_without_a_token() {
    let cfg = config();
    assert_eq!(allow(run(&cfg, "GET", "/healthz", None)).route, Route::Other);
    assert_eq!(allow(run(&cfg, "GET", "/sse-admin/x", None)).route, Route::Other);
    assert_eq!(allow(run(&cfg, "OPTIONS", STREAM, None)).route, Route::Preflight);
}

#[test]
fn cookie_token_is_accepted_and_query_token_only_when_enabled() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    let cookie = format!("theme=dark; sse_token={t}");
    let req = Request::new("GET", STREAM).with_cookie(Some(cookie.as_bytes()));
    assert_eq!(allow(decide(&cfg, &req, NOW)).token_source, Some(TokenSource::Cookie));
    let target = format!("{STREAM}&access_token={t}");
    assert_eq!(
        allow(run(&cfg, "GET", &target, None)).token_source,
        Some(TokenSource::Query)
    );
    let mut json = config_json();
    json["tokens"] = json!({"query_param": null});
    let strict = PolicyConfig::from_json(&json.to_string()).unwrap();
    assert_eq!(
        deny(run(&strict, "GET", &target, None)),
        DenyReason::Token(TokenError::Missing)
    );
}

#[test]
fn every_deny_reason_has_a_json_body_with_its_code() {
    for r in [
        DenyReason::NotFound,
        DenyReason::TooManyConnections,
        DenyReason::InvalidCompanyId,
    ] {
        let body: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(body["error"], r.code().as_str());
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(DenyReason::TooManyConnections.code().status(), 429);
}

#[test]
fn repeated_channels_collapse_and_too_many_distinct_ones_are_refused() {
    let cfg = config(); // max_channels_per_stream: 3
    let t = hs256(&claims("acme", "VIEWER"));
    let repeated = |times: usize| {
        let mut target = "/sse/stream?companyId=acme".to_owned();
        for _ in 0..times {
            target.push_str("&channel=dashboard-updates&channel=report-updates");
        }
        target
    };
    let g = allow(run(&cfg, "GET", &repeated(8), Some(&t)));
    assert_eq!(g.channels, vec!["dashboard-updates", "report-updates"]);
    // Repeats are bounded too (4x the list, at least 16 values): no unbounded comparisons.
    assert!(matches!(
        deny(run(&cfg, "GET", &repeated(9), Some(&t))),
        DenyReason::InvalidChannel(m) if m.contains("repeated")
    ));
    let four = "/sse/stream?companyId=acme&channel=a&channel=b&channel=c&channel=d&channel=a";
    assert!(matches!(
        deny(run(&cfg, "GET", four, Some(&t))),
        DenyReason::InvalidChannel(m) if m.contains("max_channels_per_stream")
    ));
}

#[test]
fn an_over_long_query_is_refused_before_the_token_is_read() {
    let cfg = config();
    let pad = "x".repeat(sse_policy::MAX_QUERY_BYTES);
    for route in ["stream", "poll", "stats"] {
        let target = format!("/sse/{route}?companyId=acme&channel=dashboard-updates&pad={pad}");
        // No token at all: the length is checked first, so the refusal is 400, not 401.
        let r = deny(run(&cfg, "GET", &target, None));
        assert_eq!(
            (r.code().status(), r.code()),
            (400, ErrorCode::InvalidRequest),
            "{route}"
        );
    }
    let at_limit = format!(
        "/sse/poll?companyId=acme&channel=dashboard-updates&pad={}",
        "x".repeat(sse_policy::MAX_QUERY_BYTES - 50)
    );
    let t = hs256(&claims("acme", "VIEWER"));
    allow(run(&cfg, "GET", &at_limit, Some(&t)));
}

#[test]
fn encoded_query_names_and_values_decode_as_forms_do() {
    let cfg = config();
    let t = hs256(&claims("acme", "VIEWER"));
    let g = allow(run(
        &cfg,
        "GET",
        "/sse/stream?company%49d=acme&&x=%zz&chan%6eel=dashboard%2Dupdates&channel=report-updates",
        Some(&t),
    ));
    assert_eq!(g.channels, vec!["dashboard-updates", "report-updates"]);
    let twice = "/sse/stream?companyId=acme&channel=dashboard-updates&company%49d=acme";
    assert_eq!(deny(run(&cfg, "GET", twice, Some(&t))), DenyReason::InvalidCompanyId);
}
