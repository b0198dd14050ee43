//! Every endpoint's bad input gets the documented status and error code.

use serde_json::{json, Value};
use sse_tests::*;

struct Case {
    method: &'static str,
    target: &'static str,
    token: Option<String>,
    body: Option<&'static str>,
    status: u16,
    code: &'static str,
}

fn case(
    method: &'static str,
    target: &'static str,
    token: Option<String>,
    body: Option<&'static str>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        target,
        token,
        body,
        status,
        code,
    }
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_code() {
    let host = TestHost::start().await;
    let v = || Some(token("acme", "VIEWER"));
    let p = || Some(token("acme", "PUBLISHER"));
    let expired = Some(token_with(json!({"company_id": "acme", "role": "VIEWER", "exp": 1}), 0));
    let cases = [
        case(
            "GET",
            "/sse/stream?channel=dashboard-updates",
            v(),
            None,
            400,
            "INVALID_COMPANY_ID",
        ),
        case(
            "GET",
            "/sse/stream?companyId=bad!id&channel=dashboard-updates",
            v(),
            None,
            400,
            "INVALID_COMPANY_ID",
        ),
        case("GET", "/sse/stream?companyId=acme", v(), None, 400, "INVALID_CHANNEL"),
        case(
            "GET",
            "/sse/stream?companyId=acme&channel=nope",
            v(),
            None,
            400,
            "INVALID_CHANNEL",
        ),
        case(
            "GET",
            "/sse/stream?companyId=acme&channel=dashboard-updates",
            None,
            None,
            401,
            "UNAUTHORIZED",
        ),
        case(
            "GET",
            "/sse/stream?companyId=acme&channel=dashboard-updates",
            Some("not.a.jwt".into()),
            None,
            401,
            "UNAUTHORIZED",
        ),
        case(
            "GET",
            "/sse/stream?companyId=acme&channel=dashboard-updates",
            expired,
            None,
            401,
            "UNAUTHORIZED",
        ),
        case(
            "POST",
            "/sse/stream?companyId=acme&channel=dashboard-updates",
            v(),
            None,
            404,
            "NOT_FOUND",
        ),
        case("GET", "/sse/nope", v(), None, 404, "NOT_FOUND"),
        case("GET", "/nope", None, None, 404, "NOT_FOUND"),
        case(
            "GET",
            "/sse/poll?companyId=acme&channel=dashboard-updates&limit=0",
            v(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        case(
            "GET",
            "/sse/poll?companyId=acme&channel=dashboard-updates&limit=abc",
            v(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        case(
            "GET",
            "/sse/poll?companyId=acme&channel=dashboard-updates&wait=999",
            v(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        case("GET", "/sse/stats", v(), None, 403, "FORBIDDEN"),
        case("POST", "/sse/publish", p(), Some("not json"), 400, "INVALID_REQUEST"),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"companyId":"acme","channel":"dashboard-updates","type":"x"}"#),
            400,
            "INVALID_REQUEST",
        ),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"companyId":"acme","channel":"dashboard-updates","type":"x","data":1,"extra":2}"#),
            400,
            "INVALID_REQUEST",
        ),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"companyId":"acme","channel":"dashboard-updates","type":"a\nid: 9","data":1}"#),
            400,
            "INVALID_REQUEST",
        ),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"companyId":"bad id","channel":"dashboard-updates","type":"x","data":1}"#),
            400,
            "INVALID_COMPANY_ID",
        ),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"companyId":"acme","channel":"nope","type":"x","data":1}"#),
            400,
            "INVALID_CHANNEL",
        ),
        case(
            "POST",
            "/sse/publish",
            p(),
            Some(r#"{"events":[]}"#),
            400,
            "INVALID_REQUEST",
        ),
        case("POST", "/sse/publish", None, Some(r#"{}"#), 401, "UNAUTHORIZED"),
        case("POST", "/sse/test-broadcast", None, Some(r#"{}"#), 404, "NOT_FOUND"),
    ];
    for c in cases {
        let mut req = host.client.request(c.method.parse().unwrap(), host.url(c.target));
        if let Some(t) = &c.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = c.body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let unauthorized = status == 401 && res.headers().get("www-authenticate").is_some();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, body["error"].as_str()),
            (c.status, Some(c.code)),
            "{} {}: {body}",
            c.method,
            c.target
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{} {}",
            c.method,
            c.target
        );
        if c.status == 401 {
            assert!(unauthorized, "401 carries WWW-Authenticate");
        }
    }
    assert_eq!(
        host.stats().await["counters"]["published"],
        0,
        "no bad input published anything"
    );
}

#[tokio::test]
async fn error_replies_carry_cors_headers_so_browsers_can_read_them() {
    let host = TestHost::start().await;
    let res = host
        .client
        .get(host.url("/sse/stream?companyId=acme&channel=dashboard-updates"))
        .header("origin", "https://app.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://app.test");
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let res = host
        .client
        .get(host.url("/sse/stream?companyId=acme&channel=dashboard-updates"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "unlisted origins get no CORS grant"
    );
    let pre = host
        .client
        .request(
            reqwest::Method::OPTIONS,
            host.url("/sse/stream?companyId=acme&channel=dashboard-updates"),
        )
        .header("origin", "https://app.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert!(pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("last-event-id"));
}
