//! Decisions of the real filter through the ABI: identity headers, token stripping,
//! every rejection, buffering headers, refused configuration.

use serde_json::{json, Value};
use sse_host::edge::{HeaderMap, LocalReply, Verdict, WasmEdge};
use sse_tests::*;

pub(crate) fn request(target: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut h: HeaderMap = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":path".to_vec(), target.as_bytes().to_vec()),
        (b":authority".to_vec(), b"test".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
    ];
    for (k, v) in extra {
        h.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    h
}

pub(crate) fn header<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

fn reply(edge: &WasmEdge, headers: HeaderMap) -> LocalReply {
    match edge.on_request(headers, false, None, 1).expect("filter runs").0 {
        Verdict::Reply(r) => r,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

#[test]
fn a_valid_token_is_forwarded_with_a_signed_identity_and_without_the_token() {
    let edge = filter_edge(1, |_| {}).unwrap();
    let auth = format!("Bearer {}", token("acme", "VIEWER"));
    let forged = [
        ("authorization", auth.as_str()),
        ("x-sse-company", "globex"),
        ("x-sse-edge-sig", "forged"),
        ("cookie", "theme=dark"),
    ];
    let (verdict, _ctx) = edge.on_request(request(STREAM, &forged), false, None, 1).unwrap();
    let Verdict::Forward(h) = verdict else { panic!("denied") };
    assert_eq!(header(&h, "authorization"), None, "the token does not travel on");
    assert_eq!(
        header(&h, "x-sse-company"),
        Some("acme"),
        "client copies are replaced by the edge's"
    );
    assert_eq!(h.iter().filter(|(k, _)| k == b"x-sse-company").count(), 1);
    assert_eq!(header(&h, "cookie"), Some("theme=dark"));
    let policy = sse_policy::PolicyConfig::from_json(&policy_json(false).to_string()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The signature covers the target as forwarded, query included.
    let signed =
        sse_policy::identity::verify(&policy, "GET", STREAM, |n| header(&h, n), now).expect("signature verifies");
    let (who, channels) = (signed.identity, signed.channels);
    assert_eq!(
        signed.body_sha256,
        sse_policy::identity::body_sha256(b""),
        "a GET is signed with no body"
    );
    assert_eq!(
        (who.company.as_str(), who.subject.as_str(), channels),
        ("acme", "tester", vec!["dashboard-updates".to_owned()])
    );
}

#[test]
fn cookie_tokens_are_accepted_and_stripped() {
    let edge = filter_edge(1, |_| {}).unwrap();
    let cookie = format!("a=1; sse_token={}; b=2", token("acme", "VIEWER"));
    let (verdict, _ctx) = edge
        .on_request(request(STREAM, &[("cookie", &cookie)]), false, None, 1)
        .unwrap();
    let Verdict::Forward(h) = verdict else { panic!("denied") };
    assert_eq!(header(&h, "cookie"), Some("a=1; b=2"));
}

#[test]
fn query_tokens_are_stripped_from_the_path_when_enabled() {
    let edge = filter_edge(1, |p| p["tokens"] = json!({"query_param": "access_token"})).unwrap();
    let target = format!("{STREAM}&access_token={}", token("acme", "VIEWER"));
    let (verdict, _ctx) = edge.on_request(request(&target, &[]), false, None, 1).unwrap();
    let Verdict::Forward(h) = verdict else { panic!("denied") };
    assert_eq!(header(&h, ":path"), Some(STREAM));
}

#[test]
fn every_rejection_has_its_status_code_and_body() {
    let edge = filter_edge(1, |_| {}).unwrap();
    let bearer = |t: String| format!("Bearer {t}");
    let viewer = bearer(token("acme", "VIEWER"));
    type Case<'a> = (String, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (STREAM.into(), vec![], 401, "UNAUTHORIZED"),
        (
            STREAM.into(),
            vec![("authorization", "Bearer a.b.c".into())],
            401,
            "UNAUTHORIZED",
        ),
        (
            STREAM.into(),
            vec![(
                "authorization",
                bearer(token_with(json!({"company_id": "acme", "exp": 1}), 0)),
            )],
            401,
            "UNAUTHORIZED",
        ),
        (
            "/sse/stream?companyId=globex&channel=dashboard-updates".into(),
            vec![("authorization", viewer.clone())],
            403,
            "FORBIDDEN",
        ),
        (
            "/sse/stream?companyId=acme&channel=audit-log".into(),
            vec![("authorization", viewer.clone())],
            403,
            "FORBIDDEN",
        ),
        (
            "/sse/stream?companyId=bad!&channel=dashboard-updates".into(),
            vec![("authorization", viewer.clone())],
            400,
            "INVALID_COMPANY_ID",
        ),
        (
            "/sse/stream?companyId=acme&channel=nope".into(),
            vec![("authorization", viewer.clone())],
            400,
            "INVALID_CHANNEL",
        ),
        (
            "/sse/stats".into(),
            vec![("authorization", viewer.clone())],
            403,
            "FORBIDDEN",
        ),
        (
            "/sse/unknown".into(),
            vec![("authorization", viewer.clone())],
            404,
            "NOT_FOUND",
        ),
    ];
    for (target, headers, status, code) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut req = request(&target, &h);
        req.push((b"origin".to_vec(), b"https://app.test".to_vec()));
        let r = reply(&edge, req);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (r.status, body["error"].as_str()),
            (status, Some(code)),
            "{target} {headers:?}"
        );
        assert_eq!(header(&r.headers, "content-type"), Some("application/json"));
        assert_eq!(
            header(&r.headers, "access-control-allow-origin"),
            Some("https://app.test"),
            "local replies carry CORS"
        );
        if status == 401 {
            assert!(header(&r.headers, "www-authenticate").is_some());
        }
    }
    assert_eq!(edge.live_contexts(), 0, "every denied context was finished");
}

#[test]
fn event_stream_responses_get_unbuffering_headers() {
    let edge = filter_edge(1, |_| {}).unwrap();
    let auth = format!("Bearer {}", token("acme", "VIEWER"));
    let (_, ctx) = edge
        .on_request(request(STREAM, &[("authorization", &auth)]), false, None, 1)
        .unwrap();
    let response: HeaderMap = vec![
        (b":status".to_vec(), b"200".to_vec()),
        (b"content-type".to_vec(), b"text/event-stream".to_vec()),
        (b"content-length".to_vec(), b"100".to_vec()),
    ];
    let h = edge.on_response(&ctx, response).unwrap();
    assert_eq!(header(&h, "cache-control"), Some("no-cache, no-transform"));
    assert_eq!(header(&h, "x-accel-buffering"), Some("no"));
    assert_eq!(header(&h, "content-length"), None);
    let json_response: HeaderMap = vec![
        (b":status".to_vec(), b"200".to_vec()),
        (b"content-type".to_vec(), b"application/json".to_vec()),
    ];
    let (_, ctx2) = edge
        .on_request(
            request(
                "/sse/poll?companyId=acme&channel=dashboard-updates",
                &[("authorization", &auth)],
            ),
            false,
            None,
            2,
        )
        .unwrap();
    assert_eq!(
        header(&edge.on_response(&ctx2, json_response).unwrap(), "x-accel-buffering"),
        None
    );
}

#[test]
fn a_bad_plugin_configuration_is_refused_at_start() {
    let err = filter_edge(2, |p| p["limits"]["max_connections_per_company"] = json!(0)).unwrap_err();
    assert!(err.to_string().contains("refused its configuration"), "{err}");
    let err = filter_edge(1, |p| p["unknown_field"] = json!(1)).unwrap_err();
    assert!(matches!(err, sse_host::edge::EdgeError::Refused { .. }), "{err}");
}

#[test]
fn the_filter_refuses_shipped_placeholders_and_unexpanded_secrets() {
    for (field, secret) in [
        ("edge", "replace-me-with-another-32-or-more-random-bytes"),
        ("edge", "${SSE_EDGE_SECRET}"),
        ("jwt", "replace-me-with-32-or-more-random-bytes!!"),
        ("jwt", "${SSE_JWT_SECRET}"),
    ] {
        let err = filter_edge(1, |p| match field {
            "edge" => p["edge"]["secret"] = json!(secret),
            _ => p["jwt"]["hmac_secret"] = json!(secret),
        })
        .expect_err("a placeholder secret must stop the filter");
        assert!(
            matches!(err, sse_host::edge::EdgeError::Refused { .. }),
            "{field}: {err}"
        );
    }
}

fn publish_request(auth: &str) -> HeaderMap {
    let mut h = request(
        "/sse/publish",
        &[("authorization", auth), ("content-type", "application/json")],
    );
    h[0].1 = b"POST".to_vec();
    h
}

#[test]
fn a_publish_is_held_until_its_body_is_in_then_signed_over_it() {
    let edge = filter_edge(1, |_| {}).unwrap();
    let auth = format!("Bearer {}", token("acme", "PUBLISHER"));
    let (verdict, mut ctx) = edge.on_request(publish_request(&auth), true, None, 1).unwrap();
    let Verdict::NeedsBody(paused) = verdict else {
        panic!("expected a pause for the body, got {verdict:?}")
    };
    let body = br#"{"companyId":"acme","channel":"dashboard-updates","type":"t","data":1}"#;
    let Verdict::Forward(h) = edge.on_request_body(&mut ctx, paused, body).unwrap() else {
        panic!("denied after the body")
    };
    let policy = sse_policy::PolicyConfig::from_json(&policy_json(false).to_string()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = sse_policy::identity::verify(&policy, "POST", "/sse/publish", |n| header(&h, n), now).unwrap();
    assert_eq!(sse_policy::identity::check_body(&signed.body_sha256, body), Ok(()));
    assert!(sse_policy::identity::check_body(&signed.body_sha256, b"{}").is_err());
    assert_eq!(header(&h, "authorization"), None, "the token does not travel on");
}

#[test]
fn a_publish_refused_on_its_headers_never_asks_for_the_body() {
    let edge = filter_edge(1, |_| {}).unwrap();
    for auth in [
        "Bearer not-a-token".to_owned(),
        format!("Bearer {}", token("acme", "VIEWER")),
    ] {
        let (verdict, _ctx) = edge.on_request(publish_request(&auth), true, None, 1).unwrap();
        let Verdict::Reply(r) = verdict else {
            panic!("expected a refusal, got {verdict:?}")
        };
        assert!(r.status == 401 || r.status == 403, "{}", r.status);
    }
}
