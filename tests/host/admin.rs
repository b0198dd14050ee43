//! The admin API on both edges (memory backend): who is connected, scoped to the
//! caller's company; disconnects that end streams with a final `closing`; revocations
//! refused at the edge; the signed revocation feed; and every way an admin request can
//! be out of bounds.

use serde_json::{json, Value};
use sse_tests::sse::{Frame, SseStream};
use sse_tests::*;

const CONNECTIONS: &str = "/sse/admin/connections";
const DISCONNECT: &str = "/sse/admin/disconnect";
const REVOKE: &str = "/sse/admin/revoke";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The host configurations of both edges: the native edge decides in the host; the
/// embedded filter decides in wasm (and learns revocations by callout).
fn both_edges() -> [sse_host::HostConfig; 2] {
    [config(false), wasm_config()]
}

/// Reads to the end of a stream an admin cut: its last frames are `retry:` a day and
/// `closing` with reason `revoked`.
async fn assert_cut(stream: &mut SseStream) {
    while let Some(f) = stream.next_frame().await {
        if let Frame::Event(e) = &f {
            if e.event == "closing" {
                assert_eq!(e.json()["reason"], "revoked");
                let retry = stream.seen.iter().rev().find_map(|f| match f {
                    Frame::Retry(ms) => Some(*ms),
                    _ => None,
                });
                assert_eq!(retry, Some(86_400_000), "a day: the client waits for a new token");
                assert_eq!(stream.next_frame().await, None, "the stream ends after closing");
                return;
            }
        }
    }
    panic!("stream ended without closing; seen {:?}", stream.seen);
}

fn ids(listing: &Value) -> Vec<String> {
    let mut v: Vec<String> = listing["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn admins_see_their_own_company_and_super_admins_see_every_company() {
    for cfg in both_edges() {
        let host = TestHost::start_with(cfg).await;
        let (_a1, a1) = host.stream_of("acme", "ann", "j-a1").await;
        let (_a2, a2) = host.stream_of("acme", "bob", "j-a2").await;
        let (_b1, b1) = host.stream_of("globex", "eve", "j-b1").await;
        // An operator watching acme: not an acme admin's to see or cut.
        let root = token_with(json!({"sub": "root", "company_id": "ops", "role": "SUPER_ADMIN"}), 600);
        let _root = host.stream_as(&root, "acme", &["dashboard-updates"], None).await;
        let acme = host.get_json(CONNECTIONS, &token("acme", "ADMIN")).await;
        assert_eq!(ids(&acme), {
            let mut v = vec![a1.clone(), a2.clone()];
            v.sort();
            v
        });
        // Totals are the company's streams, the operator's too (it holds one of acme's
        // slots); the list leaves it out.
        assert_eq!(acme["totalConnections"], 3);
        assert_eq!(acme["connectionsByCompany"], json!({"acme": 3}), "nothing of globex");
        assert_eq!(acme["hosts"][0]["self"], true);
        let row = &acme["connections"][0];
        assert_eq!(row["companyId"], "acme");
        assert_eq!(row["channels"], json!(["dashboard-updates"]));
        assert!(row["subject"] == "ann" || row["subject"] == "bob");
        // Naming another company does not widen an admin's view: it is refused.
        let (status, body) = host
            .get_status(&format!("{CONNECTIONS}?companyId=globex"), &token("acme", "ADMIN"))
            .await;
        assert_eq!((status, body["error"].as_str()), (403, Some("FORBIDDEN")));
        let (_, cut) = host
            .post_json(DISCONNECT, &token("acme", "ADMIN"), &json!({"subject": "root"}))
            .await;
        assert_eq!(
            cut["disconnected"], 0,
            "an operator's stream is out of a company admin's reach"
        );
        let all = host.get_json(CONNECTIONS, &token("ops", "SUPER_ADMIN")).await;
        assert_eq!(ids(&all).len(), 4, "the super-admin sees the operator's stream too");
        assert!(ids(&all).contains(&b1));
        let one = host
            .get_json(&format!("{CONNECTIONS}?companyId=globex"), &token("ops", "SUPER_ADMIN"))
            .await;
        assert_eq!(ids(&one), vec![b1.clone()]);
        let by_subject = host
            .get_json(&format!("{CONNECTIONS}?subject=bob"), &token("acme", "ADMIN"))
            .await;
        assert_eq!(ids(&by_subject), vec![a2.clone()]);
        let (status, _) = host.get_status(CONNECTIONS, &token("acme", "VIEWER")).await;
        assert_eq!(status, 403, "viewers do not see who is connected");
    }
}

#[tokio::test]
async fn a_disconnect_ends_the_named_streams_only_and_within_the_callers_company() {
    for cfg in both_edges() {
        let host = TestHost::start_with(cfg).await;
        let (mut ann, _) = host.stream_of("acme", "ann", "j1").await;
        let (mut bob, bob_id) = host.stream_of("acme", "bob", "j2").await;
        let (mut eve, eve_id) = host.stream_of("globex", "eve", "j3").await;
        let admin = token("acme", "ADMIN");
        // Another company's connection ID is out of an admin's reach: nothing happens.
        let (status, body) = host
            .post_json(DISCONNECT, &admin, &json!({"connectionId": eve_id}))
            .await;
        assert_eq!((status, body["disconnected"].as_u64()), (200, Some(0)));
        let (status, body) = host.post_json(DISCONNECT, &admin, &json!({"subject": "ann"})).await;
        assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)));
        assert_cut(&mut ann).await;
        let (_, body) = host
            .post_json(DISCONNECT, &admin, &json!({"connectionId": bob_id}))
            .await;
        assert_eq!(body["disconnected"], 1);
        assert_cut(&mut bob).await;
        // Eve's stream still delivers.
        host.publish("globex", "dashboard-updates", "update", json!({"n": 1}))
            .await;
        assert_eq!(eve.next_event().await.event, "update");
        let left = host.get_json(CONNECTIONS, &token("ops", "SUPER_ADMIN")).await;
        assert_eq!(ids(&left), vec![eve_id]);
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_the_edge_and_its_streams_end() {
    // A one-second JWT leeway: a subject revocation covers tokens issued up to the
    // leeway ahead (an issuer's clock may run ahead), so a new token comes a leeway later.
    let mut policy = policy_json(false);
    policy["jwt"]["leeway_secs"] = json!(1);
    for cfg in [config_for(&policy), wasm_config_for(&policy)] {
        let host = TestHost::start_with(cfg).await;
        let leaked = token_with(
            json!({"sub": "ann", "company_id": "acme", "role": "VIEWER", "jti": "leaked"}),
            600,
        );
        let mut open = host.stream_as(&leaked, "acme", &["dashboard-updates"], None).await;
        let (mut other, _) = host.stream_of("acme", "ann", "fresh").await;
        let (status, body) = host
            .post_json(REVOKE, &token("acme", "ADMIN"), &json!({"jti": "leaked"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["disconnected"], 1);
        assert_eq!(body["revocation"]["companyId"], "acme", "scoped to the admin's company");
        assert!(body["revocation"]["until"].as_u64().unwrap() > now() + 3000);
        assert_cut(&mut open).await;
        let res = host.open_stream(&leaked, "acme", &["dashboard-updates"], None).await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "UNAUTHORIZED");
        // The user's other token keeps working.
        host.publish("acme", "dashboard-updates", "update", json!({})).await;
        assert_eq!(other.next_event().await.event, "update");
        // By subject: every token issued up to now is refused, a later one is not.
        let (status, body) = host
            .post_json(REVOKE, &token("acme", "ADMIN"), &json!({"subject": "ann"}))
            .await;
        assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)));
        assert_cut(&mut other).await;
        let before = token_with(
            json!({"sub": "ann", "company_id": "acme", "role": "VIEWER", "jti": "x"}),
            600,
        );
        let res = host.open_stream(&before, "acme", &["dashboard-updates"], None).await;
        assert_eq!(res.status(), 401);
        let issued_before = body["revocation"]["issuedBefore"].as_u64().unwrap();
        assert!(issued_before >= now(), "the revocation covers the leeway");
        // A token issued after that is fine as soon as the clock lets it be issued.
        let after = token_with(
            json!({"sub": "ann", "company_id": "acme", "role": "VIEWER", "iat": issued_before + 1}),
            600,
        );
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let res = host.open_stream(&after, "acme", &["dashboard-updates"], None).await;
            match res.status().as_u16() {
                200 => break,
                401 if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                s => panic!("a token issued after the revocation got {s}"),
            }
        }
        // Another company's user of the same name is not touched.
        let globex = token_with(json!({"sub": "ann", "company_id": "globex", "role": "VIEWER"}), 600);
        let res = host.open_stream(&globex, "globex", &["dashboard-updates"], None).await;
        assert_eq!(res.status(), 200);
        let listed = host.get_json(CONNECTIONS, &token("acme", "ADMIN")).await;
        assert_eq!(listed["revocations"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn admin_requests_out_of_bounds_are_refused_with_stable_codes() {
    let host = TestHost::start().await;
    let admin = token("acme", "ADMIN");
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (DISCONNECT, json!({}), 400, "INVALID_REQUEST"),
        (DISCONNECT, json!({"companyId": "globex"}), 403, "FORBIDDEN"),
        (DISCONNECT, json!({"subject": "a", "extra": 1}), 400, "INVALID_REQUEST"),
        (DISCONNECT, json!({"subject": "a\nb"}), 400, "INVALID_REQUEST"),
        (DISCONNECT, json!({"subject": "x".repeat(300)}), 400, "INVALID_REQUEST"),
        (REVOKE, json!({"jti": "a", "subject": "b"}), 400, "INVALID_REQUEST"),
        (REVOKE, json!({}), 400, "INVALID_REQUEST"),
        (REVOKE, json!({"jti": "a", "companyId": "*"}), 403, "FORBIDDEN"),
        (REVOKE, json!({"jti": "a", "companyId": "globex"}), 403, "FORBIDDEN"),
        (REVOKE, json!({"jti": "a", "until": 1}), 400, "INVALID_REQUEST"),
        (
            REVOKE,
            json!({"jti": "a", "until": now() + 400 * 86_400}),
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, reply) = host.post_json(path, &admin, &body).await;
        assert_eq!((got, reply["error"].as_str()), (status, Some(code)), "{path} {body}");
    }
    // An admin whose token names no company ID (`*`, empty) has no scope at all.
    for company in ["*", ""] {
        let odd = token_with(json!({"sub": "x", "company_id": company, "role": "ADMIN"}), 600);
        let (got, reply) = host.post_json(REVOKE, &odd, &json!({"jti": "a"})).await;
        assert_eq!(
            (got, reply["error"].as_str()),
            (400, Some("INVALID_COMPANY_ID")),
            "{company:?}"
        );
        assert_eq!(host.get_status(CONNECTIONS, &odd).await.0, 400);
    }
    for role in ["VIEWER", "PUBLISHER"] {
        let (got, _) = host.post_json(REVOKE, &token("acme", role), &json!({"jti": "a"})).await;
        assert_eq!(got, 403, "{role} may not revoke");
    }
    // A super-admin revoking without a company must say "*".
    let (got, _) = host
        .post_json(REVOKE, &token("ops", "SUPER_ADMIN"), &json!({"jti": "a"}))
        .await;
    assert_eq!(got, 400);
    let (got, reply) = host
        .post_json(
            REVOKE,
            &token("ops", "SUPER_ADMIN"),
            &json!({"jti": "a", "companyId": "*"}),
        )
        .await;
    assert_eq!((got, reply["revocation"]["companyId"].as_str()), (200, Some("*")));
    // Not JSON, too big, a repeated parameter.
    let res = host
        .client
        .post(host.url(DISCONNECT))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415, "a cross-site form cannot post an admin action");
    let big = json!({"subject": "x".repeat(10_000)});
    assert_eq!(host.post_json(DISCONNECT, &admin, &big).await.0, 413);
    let (got, _) = host
        .get_status(&format!("{CONNECTIONS}?subject=a&subject=b"), &admin)
        .await;
    assert_eq!(got, 400);
}

#[tokio::test]
async fn the_revocation_feed_is_served_only_to_requests_signed_with_the_edge_secret() {
    let host = TestHost::start().await;
    let secret = sse_policy::Secret::new(EDGE_SECRET);
    let get = |headers: Vec<(&'static str, String)>| {
        let mut req = host.client.get(host.url("/edge/revocations"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_eq!(get(vec![]).await.unwrap().status(), 401);
    let signed = sse_policy::revocation::sign_feed(&secret, "/edge/revocations", now()).to_vec();
    let res = get(signed.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"entries": []}));
    let mut again = signed.clone();
    again.push(("if-none-match", etag.clone()));
    assert_eq!(get(again).await.unwrap().status(), 304);
    let stale = sse_policy::revocation::sign_feed(&secret, "/edge/revocations", now() - 3600).to_vec();
    assert_eq!(get(stale).await.unwrap().status(), 401);
    let wrong = sse_policy::revocation::sign_feed(&sse_policy::Secret::new("x".repeat(32)), "/edge/revocations", now());
    assert_eq!(get(wrong.to_vec()).await.unwrap().status(), 401);
    host.post_json(REVOKE, &token("acme", "ADMIN"), &json!({"jti": "t"}))
        .await;
    let mut after = signed;
    after.push(("if-none-match", etag));
    let res = get(after).await.unwrap();
    assert_eq!(res.status(), 200, "a new entry changes the ETag");
    assert_eq!(res.json::<Value>().await.unwrap()["entries"][0]["jti"], "t");
}
