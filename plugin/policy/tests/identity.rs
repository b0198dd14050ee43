//! Signed identity headers between the edge and the host.

mod support;

use sse_policy::identity::{self, EdgeAuthError};
use sse_policy::Identity;
use support::*;

fn who() -> Identity {
    Identity {
        subject: "user-1".into(),
        company: "acme".into(),
        roles: vec!["VIEWER".into()],
        expires_at: Some(NOW + 60),
        super_admin: false,
        token_id: String::new(),
        issued_at: None,
    }
}

fn signed() -> Vec<(&'static str, String)> {
    identity::sign(
        &config().edge.secret,
        "GET",
        "/sse/stream",
        &who(),
        &["dashboard-updates".into()],
        b"",
        NOW,
    )
}

fn check(
    headers: &[(&'static str, String)],
    method: &str,
    path: &str,
    now: u64,
) -> Result<(Identity, Vec<String>), EdgeAuthError> {
    identity::verify(
        &config(),
        method,
        path,
        |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()),
        now,
    )
    .map(|v| (v.identity, v.channels))
}

#[test]
fn signed_identity_round_trips() {
    let (id, channels) = check(&signed(), "GET", "/sse/stream", NOW + 5).unwrap();
    assert_eq!(id, who());
    assert_eq!(channels, vec!["dashboard-updates"]);
}

#[test]
fn every_field_is_covered_by_the_signature() {
    let base = signed();
    for i in 0..base.len() - 1 {
        let mut forged = base.clone();
        forged[i].1.push('x');
        let r = check(&forged, "GET", "/sse/stream", NOW);
        assert!(
            matches!(r, Err(EdgeAuthError::BadSignature | EdgeAuthError::Malformed)),
            "{} not covered: {r:?}",
            base[i].0
        );
    }
    assert_eq!(
        check(&base, "POST", "/sse/stream", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
    assert_eq!(
        check(&base, "GET", "/sse/poll", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
}

#[test]
fn unsigned_and_stale_identities_are_refused() {
    let mut unsigned = signed();
    unsigned.pop();
    assert_eq!(
        check(&unsigned, "GET", "/sse/stream", NOW).unwrap_err(),
        EdgeAuthError::Missing
    );
    assert_eq!(
        check(&signed(), "GET", "/sse/stream", NOW + 31).unwrap_err(),
        EdgeAuthError::Stale
    );
    let other = identity::sign(
        &sse_policy::Secret::new(HMAC_SECRET),
        "GET",
        "/sse/stream",
        &who(),
        &[],
        b"",
        NOW,
    );
    assert_eq!(
        check(&other, "GET", "/sse/stream", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
}

#[test]
fn any_subject_and_roles_round_trip_as_visible_ascii_without_smuggled_separators() {
    let tricky = Identity {
        subject: "José 😀 <a@b>, \"x\"\r\nx-sse-role: SUPER_ADMIN".into(),
        company: "acme".into(),
        roles: vec!["VIEWER".into(), "x,SUPER_ADMIN".into(), "a%2Cb".into()],
        expires_at: None,
        super_admin: false,
        token_id: "jti, \"q\"\r\nx".into(),
        issued_at: Some(7),
    };
    let headers = identity::sign(&config().edge.secret, "GET", "/sse/stats", &tricky, &[], b"", NOW);
    for (name, value) in &headers {
        assert!(
            value.bytes().all(|b| b.is_ascii_graphic()),
            "{name} is not visible ASCII: {value:?}"
        );
    }
    let (id, _) = check(&headers, "GET", "/sse/stats", NOW).unwrap();
    assert_eq!(
        id, tricky,
        "decoded exactly; `x,SUPER_ADMIN` stays one role and grants nothing"
    );
    assert!(!id.super_admin);
}

#[test]
fn the_signature_binds_the_query_and_refuses_the_future() {
    let target = "/sse/poll?companyId=acme&channel=dashboard-updates&since=5";
    let headers = identity::sign(
        &config().edge.secret,
        "GET",
        target,
        &who(),
        &["dashboard-updates".into()],
        b"",
        NOW,
    );
    assert!(check(&headers, "GET", target, NOW).is_ok());
    for other in [
        "/sse/poll?companyId=acme&channel=dashboard-updates&since=0",
        "/sse/poll?companyId=acme&channel=dashboard-updates",
        "/sse/poll?companyId=acme&channel=dashboard-updates&since=5&wait=30",
    ] {
        assert_eq!(
            check(&headers, "GET", other, NOW).unwrap_err(),
            EdgeAuthError::BadSignature,
            "{other}"
        );
    }
    let max_future = identity::MAX_FUTURE_SKEW_SECS;
    assert!(
        check(&headers, "GET", target, NOW - max_future).is_ok(),
        "a small clock difference"
    );
    assert_eq!(
        check(&headers, "GET", target, NOW - max_future - 1).unwrap_err(),
        EdgeAuthError::Stale,
        "signed further in the future than clocks differ"
    );
}

#[test]
fn the_signature_binds_the_body() {
    let body = br#"{"companyId":"acme","channel":"dashboard-updates","type":"t","data":1}"#;
    let headers = identity::sign(&config().edge.secret, "POST", "/sse/publish", &who(), &[], body, NOW);
    let signed = identity::verify(
        &config(),
        "POST",
        "/sse/publish",
        |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()),
        NOW,
    )
    .unwrap();
    assert_eq!(identity::check_body(&signed.body_sha256, body), Ok(()));
    for other in [&b""[..], b"{}", &body[..body.len() - 1]] {
        assert_eq!(
            identity::check_body(&signed.body_sha256, other),
            Err(EdgeAuthError::BodyMismatch),
            "{}",
            String::from_utf8_lossy(other)
        );
    }
    // The digest header itself is covered: swapping in the digest of another body
    // breaks the signature.
    let mut swapped = headers.clone();
    let digest = swapped.iter_mut().find(|(k, _)| *k == identity::BODY_SHA256).unwrap();
    digest.1 = identity::body_sha256(b"{}");
    assert_eq!(
        check(&swapped, "POST", "/sse/publish", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
}

#[test]
fn an_empty_body_is_signed_without_a_header_and_the_header_cannot_be_dropped() {
    assert_eq!(identity::body_sha256(b""), identity::EMPTY_BODY_SHA256);
    let get = signed();
    assert!(
        get.iter().all(|(k, _)| *k != identity::BODY_SHA256),
        "no header for no body"
    );
    assert!(check(&get, "GET", "/sse/stream", NOW).is_ok());
    // A publish's digest header removed: the signature covered the real digest.
    let body = br#"{"n":1}"#;
    let mut publish = identity::sign(&config().edge.secret, "POST", "/sse/publish", &who(), &[], body, NOW);
    publish.retain(|(k, _)| *k != identity::BODY_SHA256);
    assert_eq!(
        check(&publish, "POST", "/sse/publish", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
}
