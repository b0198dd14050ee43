//! Response builders. Every error reply goes through [`error`], so statuses, codes,
//! bodies and CORS headers are the same everywhere (and the same as the filter's).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{Response, StatusCode};
use serde::Serialize;
use sse_policy::{error_body, reply as policy_reply, PolicyConfig};

use crate::error::HostError;

/// The body type of every response.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A body that keeps `G` alive until the body is dropped: filter contexts (wasm edge),
/// an HTTP/2 connection's count of live streams. Unboxed: it wraps a body by value.
pub(crate) struct Guarded<G> {
    inner: Body,
    _guard: G,
}

impl<G> Guarded<G> {
    pub(crate) fn new(inner: Body, guard: G) -> Self {
        Self { inner, _guard: guard }
    }
}

impl<G: Unpin> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn with_headers(status: u16, headers: Vec<(&'static str, String)>, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            res.headers_mut().append(k, v);
        }
    }
    res
}

/// A JSON response with CORS headers for `origin`.
pub(crate) fn json(policy: &PolicyConfig, origin: Option<&str>, status: u16, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("serializing plain data cannot fail");
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ];
    headers.extend(policy_reply::cors_headers(&policy.cors, origin));
    with_headers(status, headers, full(body))
}

/// A plain-text response (health, metrics).
pub(crate) fn text(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    with_headers(status, vec![("content-type", content_type.to_owned())], full(body))
}

/// The reply for an error: status and code from the one mapping, JSON body, CORS, and
/// `WWW-Authenticate` / `Retry-After` where they belong.
pub(crate) fn error(policy: &PolicyConfig, origin: Option<&str>, err: &HostError) -> Response<Body> {
    let code = err.code();
    let mut headers = policy_reply::error_headers(policy, code, err.token_missing());
    headers.extend(policy_reply::cors_headers(&policy.cors, origin));
    with_headers(code.status(), headers, full(error_body(code, &err.to_string())))
}

/// 204 for a CORS preflight.
pub(crate) fn preflight(policy: &PolicyConfig, origin: Option<&str>) -> Response<Body> {
    let mut headers = policy_reply::cors_headers(&policy.cors, origin);
    headers.extend(policy_reply::preflight_headers(&policy.cors));
    with_headers(204, headers, full(Bytes::new()))
}

/// An SSE response around `body`.
pub(crate) fn event_stream(policy: &PolicyConfig, origin: Option<&str>, body: Body) -> Response<Body> {
    let mut headers = vec![
        ("content-type", "text/event-stream; charset=utf-8".to_owned()),
        ("cache-control", "no-cache, no-transform".to_owned()),
        ("x-accel-buffering", "no".to_owned()),
    ];
    headers.extend(policy_reply::cors_headers(&policy.cors, origin));
    with_headers(200, headers, body)
}

/// A reply built outside HTTP types (the revocation feed's, shared with the embedded
/// edge's in-process callouts).
pub(crate) fn local(reply: crate::edge::LocalReply) -> Response<Body> {
    let mut res = Response::new(full(reply.body));
    *res.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(&name),
            hyper::header::HeaderValue::from_bytes(&value),
        ) {
            res.headers_mut().append(n, v);
        }
    }
    res
}
