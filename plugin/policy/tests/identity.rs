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
    }
}

fn signed() -> Vec<(&'static str, String)> {
    identity::sign(
        &config().edge.secret,
        "GET",
        "/sse/stream",
        &who(),
        &["dashboard-updates".into()],
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
        NOW,
    );
    assert_eq!(
        check(&other, "GET", "/sse/stream", NOW).unwrap_err(),
        EdgeAuthError::BadSignature
    );
}
