//! The browser side, compiled into the binary: the demo dashboard at `/`, the client
//! library and React bindings under `/web/`, and (dev mode only) `/dev/token`.

use hyper::{Request, Response};

use super::reply::{self, Body};
use crate::state::AppState;

const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/dashboard.js"),
    ),
    (
        "sse-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/sse-client.js"),
    ),
    (
        "sse-parser.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/sse-parser.js"),
    ),
    (
        "backoff.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/backoff.js"),
    ),
    (
        "react.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/react.js"),
    ),
    (
        "sse-client.d.ts",
        "text/plain; charset=utf-8",
        include_str!("../../web/sse-client.d.ts"),
    ),
];

/// A file of the web client, by name.
pub(crate) fn file(name: &str) -> Option<Response<Body>> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, ct, body)| {
        let mut res = reply::text(200, ct, *body);
        res.headers_mut()
            .insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
        res
    })
}

/// `GET /dev/token?company=C&role=R`: a dev token, only when the host runs `--dev`.
pub(crate) fn dev_token<B>(state: &AppState, req: &Request<B>) -> Option<Response<Body>> {
    let secrets = state.dev.as_ref()?;
    let q: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let company = get("company").unwrap_or("test-company");
    let role = get("role").unwrap_or("VIEWER");
    let token = secrets.token(company, role, "dashboard", std::time::Duration::from_secs(3600));
    Some(reply::json(
        &state.config.policy,
        None,
        200,
        &serde_json::json!({ "token": token }),
    ))
}
