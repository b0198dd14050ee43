//! Configuration parsing: strict schema, every problem reported, secrets redacted.

mod support;

use serde_json::json;
use sse_policy::{ConfigError, PolicyConfig};
use support::*;

#[test]
fn the_test_config_is_valid_and_has_every_key() {
    let cfg = config();
    assert_eq!(cfg.jwt.keys.len(), 4);
    assert!(cfg.is_valid_company_id("acme_Corp-1"));
    assert!(!cfg.is_valid_company_id("acme corp"));
}

#[test]
fn minimal_config_gets_the_seed_defaults() {
    let cfg = PolicyConfig::from_json(
        &json!({"jwt": {"hmac_secret": HMAC_SECRET}, "edge": {"secret": EDGE_SECRET}}).to_string(),
    )
    .unwrap();
    let names: Vec<_> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dashboard-updates", "evidence-updates", "report-updates"]);
    assert_eq!(cfg.limits.max_connections_per_company, 100);
    assert_eq!(cfg.routes.prefix, "/sse");
    assert!(!cfg.routes.dev_mode);
    assert_eq!(cfg.tokens.query_param, None, "query tokens are off by default");
}

#[test]
fn unknown_fields_are_rejected() {
    let mut j = config_json();
    j["jwt"]["leway_secs"] = json!(5);
    let err = PolicyConfig::from_json(&j.to_string()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Syntax(m) if m.contains("leway_secs")),
        "{err}"
    );
}

#[test]
fn every_invalid_field_is_reported_at_once() {
    let j = json!({
        "jwt": {"hmac_secret": "short", "leeway_secs": 9999, "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}, {"kty": "EC", "crv": "P-384", "x": "", "y": ""}]}},
        "company_id_pattern": "[a-z]+",
        "channels": [{"name": "a,b"}, {"name": "ok"}, {"name": "ok"}],
        "limits": {"max_connections_per_company": 0, "max_channels_per_stream": 0, "retry_after_secs": 0},
        "routes": {"prefix": "sse/"},
        "edge": {"secret": "tiny", "max_skew_secs": 0},
        "cors": {"allowed_origins": ["*", "ftp://x"], "allow_credentials": true},
        "tokens": {"authorization_header": false, "cookie": "bad cookie", "query_param": null}
    });
    let ConfigError::Invalid(problems) = PolicyConfig::from_json(&j.to_string()).unwrap_err() else {
        panic!("expected semantic errors");
    };
    for field in [
        "jwt.hmac_secret",
        "jwt.leeway_secs",
        "jwt.jwks.keys[0]",
        "jwt.jwks.keys[1]",
        "company_id_pattern",
        "channels[0].name",
        "channels[2].name",
        "limits.max_connections_per_company",
        "limits.max_channels_per_stream",
        "limits.retry_after_secs",
        "routes.prefix",
        "edge.secret",
        "edge.max_skew_secs",
        "cors.allowed_origins",
        "tokens.cookie",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "no problem reported for {field}: {problems:#?}"
        );
    }
}

#[test]
fn a_config_without_keys_is_refused() {
    let err = PolicyConfig::from_json(&json!({"jwt": {}, "edge": {"secret": EDGE_SECRET}}).to_string()).unwrap_err();
    assert!(err.to_string().contains("no verification key"), "{err}");
}

#[test]
fn jwk_alg_must_fit_the_key_type() {
    let mut j = config_json();
    j["jwt"]["jwks"]["keys"][1]["alg"] = json!("RS256");
    let err = PolicyConfig::from_json(&j.to_string()).unwrap_err();
    assert!(err.to_string().contains("jwt.jwks.keys[1]"), "{err}");
}

#[test]
fn debug_output_never_shows_secrets() {
    let shown = format!("{:?}", config());
    assert!(!shown.contains(HMAC_SECRET) && !shown.contains(EDGE_SECRET), "{shown}");
    assert!(shown.contains("redacted"));
}

#[test]
fn empty_issuers_or_audiences_are_warned_about_outside_dev_mode() {
    assert!(config().warnings().is_empty(), "the test policy names both");
    let lax = json!({"jwt": {"hmac_secret": HMAC_SECRET}, "edge": {"secret": EDGE_SECRET}});
    let warnings = PolicyConfig::from_json(&lax.to_string()).unwrap().warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("jwt.issuers") && warnings[1].contains("jwt.audiences"));
    let mut dev = lax;
    dev["routes"] = json!({"dev_mode": true});
    assert!(PolicyConfig::from_json(&dev.to_string()).unwrap().warnings().is_empty());
}

#[test]
fn shipped_placeholders_and_unexpanded_variables_are_refused_as_secrets() {
    for (secret, says) in [
        ("replace-me-with-32-or-more-random-bytes!!", "shipped placeholder"),
        ("REPLACE-ME-0123456789012345678901234567890", "shipped placeholder"),
        ("${SSE_EDGE_SECRET}", "set SSE_EDGE_SECRET"),
        ("short", "at least 32 bytes"),
    ] {
        for field in ["edge.secret", "jwt.hmac_secret"] {
            let mut j = config_json();
            match field {
                "edge.secret" => j["edge"]["secret"] = json!(secret),
                _ => j["jwt"]["hmac_secret"] = json!(secret),
            }
            let err = PolicyConfig::from_json(&j.to_string()).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains(says), "{field} = {secret:?}: {err}");
            assert!(
                !err.contains(secret) || secret.starts_with("${"),
                "the value is not echoed: {err}"
            );
        }
    }
}

#[test]
fn tiers_give_listed_companies_their_own_connection_limit() {
    let policy = |limits: serde_json::Value| {
        PolicyConfig::from_json(
            &json!({"jwt": {"hmac_secret": HMAC_SECRET}, "edge": {"secret": EDGE_SECRET}, "limits": limits})
                .to_string(),
        )
    };
    let cfg = policy(json!({
        "max_connections_per_company": 10,
        "tiers": {"enterprise": {"max_connections_per_company": 500}, "free": {"max_connections_per_company": 2}},
        "company_tiers": {"acme": "enterprise", "tiny": "free"}
    }))
    .unwrap();
    assert_eq!(cfg.limits.connections_for("acme"), 500);
    assert_eq!(cfg.limits.connections_for("tiny"), 2);
    assert_eq!(cfg.limits.connections_for("globex"), 10, "not listed: the default");
    let tiered: Vec<_> = cfg
        .limits
        .tiered_companies()
        .map(|(c, t)| (c, t.max_connections_per_company))
        .collect();
    assert_eq!(tiered, [("acme", Some(500)), ("tiny", Some(2))]);
    let Err(ConfigError::Invalid(problems)) = policy(json!({
        "tiers": {
            "zero": {"max_connections_per_company": 0, "channels": []},
            "big": {"history_size": 1000000, "publish_burst": 0.5, "history_max_age_secs": 4000000000_u64},
            "slow": {"publish_rate_per_sec": 1e-9}
        },
        "company_tiers": {"acme": "gold", "not a company!": "zero"}
    })) else {
        panic!("a bad tier config is refused");
    };
    let all = problems.join("\n");
    for expected in [
        "tiers.zero.max_connections_per_company",
        "tiers.zero.channels",
        "tiers.big.history_size",
        "tiers.big.history_max_age_secs",
        "tiers.big: publish_rate_per_sec",
        "tiers.slow: publish_rate_per_sec",
        "no tier named \"gold\"",
        "does not match company_id_pattern",
    ] {
        assert!(all.contains(expected), "{expected} not in:\n{all}");
    }
}

#[test]
fn a_tiers_channels_must_be_whitelisted() {
    let Err(ConfigError::Invalid(problems)) = PolicyConfig::from_json(
        &json!({"jwt": {"hmac_secret": HMAC_SECRET}, "edge": {"secret": EDGE_SECRET},
                "limits": {"tiers": {"t": {"channels": ["dashboard-updates", "nope"]}}}})
        .to_string(),
    ) else {
        panic!("an unknown channel in a tier is refused");
    };
    assert!(
        problems.join("\n").contains("limits.tiers.t.channels: \"nope\""),
        "{problems:?}"
    );
}
