//! Token verification: every algorithm accepted, every rejection named.

mod support;

use serde_json::json;
use sse_policy::jwt::{verify, TokenError, MAX_TOKEN_BYTES};
use support::*;

fn check(token: &str) -> Result<sse_policy::jwt::Claims, TokenError> {
    verify(token, &config().jwt, NOW)
}

#[test]
fn every_supported_algorithm_verifies() {
    let c = claims("acme", "VIEWER");
    for (alg, kid) in [
        ("HS256", None),
        ("HS384", None),
        ("HS512", None),
        ("RS256", Some("rsa1")),
        ("ES256", Some("ec1")),
        ("EdDSA", Some("ed1")),
    ] {
        let claims = check(&sign(alg, kid, &c)).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.company_id.as_deref(), Some("acme"), "{alg}");
        assert_eq!(claims.roles, vec!["VIEWER".to_string()]);
        assert_eq!(claims.subject, "user-1");
        assert_eq!(claims.expires_at, Some(NOW + 600));
    }
}

#[test]
fn asymmetric_tokens_without_kid_try_every_key_of_the_family() {
    let c = claims("acme", "VIEWER");
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(check(&sign(alg, None, &c)).is_ok(), "{alg}");
    }
}

#[test]
fn unknown_kid_is_rejected() {
    assert_eq!(
        check(&sign("RS256", Some("nope"), &claims("a", "V"))),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn alg_none_is_rejected() {
    let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims("a", "V").to_string()));
    assert_eq!(check(&token), Err(TokenError::UnsupportedAlgorithm));
    let token = format!("{}.{}.", b64(r#"{"alg":"None"}"#), b64(claims("a", "V").to_string()));
    assert_eq!(check(&token), Err(TokenError::UnsupportedAlgorithm));
}

#[test]
fn hmac_token_keyed_with_a_public_key_is_rejected() {
    // Classic algorithm confusion: sign HS256 with the RSA public key's bytes, hoping the
    // verifier uses the "key" it has for the kid as an HMAC secret.
    use rsa::pkcs8::EncodePublicKey;
    let public_pem = rsa_key().to_public_key().to_public_key_pem(Default::default()).unwrap();
    let header = json!({"alg": "HS256", "kid": "rsa1"});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims("a", "V").to_string()));
    let sig = hmac_sign::<hmac::Hmac<sha2::Sha256>>(public_pem.as_bytes(), input.as_bytes());
    let err = check(&format!("{input}.{}", b64(sig))).unwrap_err();
    assert!(
        matches!(err, TokenError::UnsupportedAlgorithm | TokenError::UnknownKey),
        "{err:?}"
    );
}

#[test]
fn rs256_header_on_an_ec_kid_is_rejected() {
    let token = sign("RS256", Some("ec1"), &claims("a", "V"));
    assert!(check(&token).is_err());
}

#[test]
fn tampered_payload_fails_the_signature() {
    for (alg, kid) in [
        ("HS256", None),
        ("RS256", Some("rsa1")),
        ("ES256", Some("ec1")),
        ("EdDSA", Some("ed1")),
    ] {
        let token = sign(alg, kid, &claims("acme", "VIEWER"));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(claims("other", "SUPER_ADMIN").to_string());
        parts[1] = &forged;
        assert_eq!(check(&parts.join(".")), Err(TokenError::BadSignature), "{alg}");
    }
}

#[test]
fn expiry_and_not_before_honour_the_leeway() {
    let mut c = claims("a", "V");
    c["exp"] = json!(NOW - 31);
    assert_eq!(check(&hs256(&c)), Err(TokenError::Expired));
    c["exp"] = json!(NOW - 29);
    assert!(check(&hs256(&c)).is_ok(), "within 30 s leeway");
    c["exp"] = json!(NOW + 60);
    c["nbf"] = json!(NOW + 31);
    assert_eq!(check(&hs256(&c)), Err(TokenError::NotYetValid));
    c["nbf"] = json!(NOW + 29);
    assert!(check(&hs256(&c)).is_ok());
    c["iat"] = json!(NOW + 3600);
    assert_eq!(check(&hs256(&c)), Err(TokenError::NotYetValid));
}

#[test]
fn fractional_numeric_dates_are_accepted() {
    let mut c = claims("a", "V");
    c["exp"] = json!((NOW + 60) as f64 + 0.5);
    assert_eq!(check(&hs256(&c)).unwrap().expires_at, Some(NOW + 60));
    c["exp"] = json!("tomorrow");
    assert_eq!(check(&hs256(&c)), Err(TokenError::BadClaims));
}

#[test]
fn missing_expiry_is_rejected_by_default() {
    let mut c = claims("a", "V");
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&hs256(&c)), Err(TokenError::MissingExpiry));
}

#[test]
fn wrong_issuer_and_audience_are_rejected() {
    let mut c = claims("a", "V");
    c["iss"] = json!("https://evil.test");
    assert_eq!(check(&hs256(&c)), Err(TokenError::WrongIssuer));
    let mut c = claims("a", "V");
    c["aud"] = json!(["other", "another"]);
    assert_eq!(check(&hs256(&c)), Err(TokenError::WrongAudience));
    c["aud"] = json!(["other", "sse"]);
    assert!(check(&hs256(&c)).is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(check(&hs256(&c)), Err(TokenError::WrongAudience));
}

#[test]
fn malformed_tokens_are_rejected() {
    let good = hs256(&claims("a", "V"));
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.***", parts[0], parts[1]),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
    ] {
        assert!(check(&bad).is_err(), "{bad:?} accepted");
    }
    let not_object = sign("HS256", None, &json!([1, 2]));
    assert_eq!(check(&not_object), Err(TokenError::BadClaims));
}

#[test]
fn oversized_tokens_are_rejected_before_decoding() {
    let mut c = claims("a", "V");
    c["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
    assert_eq!(check(&hs256(&c)), Err(TokenError::TooLarge));
}

#[test]
fn role_and_roles_are_merged() {
    let mut c = claims("a", "ADMIN");
    c["roles"] = json!(["PUBLISHER", "ADMIN"]);
    assert_eq!(check(&hs256(&c)).unwrap().roles, vec!["PUBLISHER", "ADMIN"]);
}

#[test]
fn claims_that_could_inject_headers_are_rejected() {
    let mut c = claims("a", "V");
    c["sub"] = json!("user\r\nx-sse-company: other");
    assert_eq!(check(&hs256(&c)), Err(TokenError::BadClaims));
    let mut c = claims("a", "V");
    c["roles"] = json!(["A,SUPER_ADMIN"]);
    assert_eq!(check(&hs256(&c)), Err(TokenError::BadClaims));
}

#[test]
fn wrong_hmac_secret_fails() {
    let token = sse_policy::mint::hs256(
        &sse_policy::Secret::new("another-secret-that-is-32-bytes-long!!!!"),
        &claims("a", "V"),
    );
    assert_eq!(check(&token), Err(TokenError::BadSignature));
}

/// A correctly signed HS256 token with `header` as its JOSE header.
fn with_header(header: serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(claims("acme", "VIEWER").to_string())
    );
    let sig = raw_signature("HS256", input.as_bytes());
    format!("{input}.{}", b64(sig))
}

#[test]
fn a_critical_header_is_refused_whatever_it_names() {
    assert!(
        check(&with_header(json!({"alg": "HS256"}))).is_ok(),
        "the control verifies"
    );
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null), json!("x")] {
        let token = with_header(json!({"alg": "HS256", "crit": crit, "b64": false}));
        assert_eq!(check(&token).unwrap_err(), TokenError::CriticalHeader, "crit: {crit}");
    }
}

/// A correctly signed HS256 token whose header and payload are these exact texts (so
/// they can hold what a JSON serializer would never write).
fn raw_token(header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = raw_signature("HS256", input.as_bytes());
    format!("{input}.{}", b64(sig))
}

#[test]
fn claim_shape_tricks_are_refused() {
    let head = r#"{"alg":"HS256"}"#;
    let base = |extra: &str| {
        format!(
            r#"{{"sub":"u","iss":"https://idp.test","aud":"sse","iat":{},"exp":{}{extra}}}"#,
            NOW - 10,
            NOW + 600
        )
    };
    assert!(
        check(&raw_token(head, &base(r#","company_id":"acme","role":"VIEWER""#))).is_ok(),
        "control"
    );
    for (what, extra) in [
        (
            "duplicate company_id",
            r#","company_id":"acme","company_id":"globex","role":"VIEWER""#,
        ),
        (
            "duplicate role",
            r#","company_id":"acme","role":"VIEWER","role":"SUPER_ADMIN""#,
        ),
        ("company_id as a number", r#","company_id":42,"role":"VIEWER""#),
        (
            "company_id as an array",
            r#","company_id":["acme","globex"],"role":"VIEWER""#,
        ),
        ("roles as a string", r#","company_id":"acme","roles":"SUPER_ADMIN""#),
        ("role as an array", r#","company_id":"acme","role":["SUPER_ADMIN"]"#),
    ] {
        assert_eq!(
            check(&raw_token(head, &base(extra))).unwrap_err(),
            TokenError::BadClaims,
            "{what}"
        );
    }
    let dup_exp = format!(
        r#"{{"sub":"u","iss":"https://idp.test","aud":"sse","exp":{},"exp":{}}}"#,
        NOW - 100,
        NOW + 600
    );
    assert!(
        check(&raw_token(head, &dup_exp)).is_err(),
        "a duplicate exp cannot extend a token"
    );
}

#[test]
fn header_shape_tricks_are_refused() {
    let payload = claims("acme", "VIEWER").to_string();
    // `kid: null` is "no kid": the HMAC key is the only candidate, so the token verifies.
    assert!(
        check(&raw_token(r#"{"alg":"HS256","kid":null}"#, &payload)).is_ok(),
        "kid null"
    );
    for (what, header) in [
        ("duplicate alg", r#"{"alg":"none","alg":"HS256"}"#),
        ("alg as a number", r#"{"alg":256}"#),
        ("no alg", r#"{"typ":"JWT"}"#),
    ] {
        assert!(check(&raw_token(header, &payload)).is_err(), "{what}");
    }
    // The standard base64 alphabet (with '+', '/' or padding) is not base64url.
    let good = raw_token(r#"{"alg":"HS256"}"#, &payload);
    let padded = good.replacen('.', "==.", 1);
    assert_eq!(check(&padded).unwrap_err(), TokenError::Malformed, "padding");
    let std_alphabet = good.replace('-', "+").replace('_', "/");
    if std_alphabet != good {
        assert!(check(&std_alphabet).is_err(), "standard alphabet");
    }
}
