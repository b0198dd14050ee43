//! `authorize_publish`: what a publish's body may name, for every kind of caller.

mod support;

use serde_json::json;
use sse_policy::{authorize_publish, Decision, DenyReason, Grant, PolicyConfig, Request, Route};
use support::*;

/// The grant `decide` gives a `POST /sse/publish` with a token of `company` and `role`.
fn publisher(cfg: &PolicyConfig, company: &str, role: &str) -> Grant {
    let auth = format!("Bearer {}", hs256(&claims(company, role)));
    let req = Request::new("POST", "/sse/publish")
        .with_authorization(Some(auth.as_bytes()))
        .with_content_type(Some(b"application/json"));
    match sse_policy::decide(cfg, &req, NOW) {
        Decision::Allow(g) => g,
        Decision::Deny(r) => panic!("the publisher token is refused: {r:?}"),
    }
}

fn dev_config() -> PolicyConfig {
    let mut json = config_json();
    json["routes"] = json!({"dev_mode": true});
    PolicyConfig::from_json(&json.to_string()).unwrap()
}

fn anonymous(route: Route) -> Grant {
    Grant {
        route,
        identity: None,
        channels: Vec::new(),
        token_source: None,
    }
}

const OWN: [(&str, &str); 2] = [("acme", "dashboard-updates"), ("acme", "report-updates")];

#[test]
fn a_publisher_publishes_to_its_own_company() {
    let cfg = config();
    let g = publisher(&cfg, "acme", "PUBLISHER");
    assert_eq!(authorize_publish(&cfg, &g, OWN), Ok("acme"));
}

#[test]
fn another_company_in_the_body_is_forbidden() {
    let cfg = config();
    let g = publisher(&cfg, "acme", "PUBLISHER");
    let r = authorize_publish(&cfg, &g, [("beta", "dashboard-updates")]).unwrap_err();
    assert_eq!((r.clone(), r.code().status()), (DenyReason::CompanyMismatch, 403));
}

#[test]
fn a_super_admin_publishes_to_any_company() {
    let cfg = config();
    let g = publisher(&cfg, "acme", "SUPER_ADMIN");
    assert_eq!(authorize_publish(&cfg, &g, [("beta", "dashboard-updates")]), Ok("beta"));
}

#[test]
fn a_batch_names_one_company_and_whitelisted_channels_only() {
    let cfg = config();
    let g = publisher(&cfg, "acme", "SUPER_ADMIN");
    let mixed = [("acme", "dashboard-updates"), ("beta", "dashboard-updates")];
    assert!(matches!(
        authorize_publish(&cfg, &g, mixed),
        Err(DenyReason::InvalidRequest(_))
    ));
    let unknown = [("acme", "dashboard-updates"), ("acme", "secret-channel")];
    assert!(matches!(
        authorize_publish(&cfg, &g, unknown),
        Err(DenyReason::InvalidChannel(_))
    ));
    let none: [(&str, &str); 0] = [];
    assert!(matches!(
        authorize_publish(&cfg, &g, none),
        Err(DenyReason::InvalidRequest(_))
    ));
    assert_eq!(
        authorize_publish(&cfg, &g, [("no spaces", "dashboard-updates")]),
        Err(DenyReason::InvalidCompanyId)
    );
}

#[test]
fn without_an_identity_only_the_dev_test_broadcast_publishes() {
    let (cfg, dev) = (config(), dev_config());
    let target = [("acme", "dashboard-updates")];
    assert_eq!(
        authorize_publish(&dev, &anonymous(Route::TestBroadcast), target),
        Ok("acme")
    );
    // Fail closed: a grant without an identity never publishes outside dev mode or on
    // another route, whoever built it.
    for (policy, route) in [
        (&cfg, Route::TestBroadcast),
        (&dev, Route::Publish),
        (&dev, Route::Stream),
    ] {
        assert_eq!(
            authorize_publish(policy, &anonymous(route), target),
            Err(DenyReason::RoleForbidden),
            "{route:?}"
        );
    }
}
