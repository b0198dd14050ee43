//! Request routing: health and metrics, then the SSE routes behind the edge.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::{Method, Request, Response};
use sse_policy::Route;

use super::reply::{self, Body};
use super::wasm::{self, ConnInfo};
use super::{admin, edge, poll, publish, stream, web};
use crate::error::HostError;
use crate::state::AppState;

/// The service function: never fails at the HTTP level; errors become error replies.
/// With the embedded edge, requests under the SSE prefix pass the filter chain first.
/// A request body the routes accept: hyper's `Incoming`, or `Empty` from the HTTP/1.1
/// stream fast path (`fast.rs`).
pub(crate) trait RequestBody:
    http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

pub(crate) async fn handle<B: RequestBody>(
    state: Arc<AppState>,
    req: Request<B>,
    conn: ConnInfo,
) -> Result<Response<Body>, Infallible> {
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let origin = origin.as_deref();
    // The revocation feed answers only requests signed with the edge secret, which a
    // rebinding page cannot produce, and Envoy's callouts name the cluster as their host.
    if req.method() == Method::GET && req.uri().path() == state.config.policy.edge.revocations.path {
        return Ok(revocation_feed(&state, &req));
    }
    if state.config.dev && !dev_host_allowed(&req) {
        return Ok(reply::error(&state.config.policy, origin, &HostError::ForeignHost));
    }
    let under_prefix = req.uri().path().starts_with(state.config.policy.routes.prefix.as_str());
    let Some(edge) = state.edge.as_ref().filter(|_| under_prefix) else {
        return Ok(route(&state, req, origin).await);
    };
    Ok(match wasm::filter_request(&state, edge, req, conn, origin).await {
        wasm::Filtered::Answered(res) => res,
        wasm::Filtered::Forward(req, contexts) => {
            let res = route(&state, req, origin).await;
            wasm::filter_response(&state, edge, contexts, res, origin)
        }
    })
}

/// A dev host answers only requests that name a loopback host or an address (even when it listens
/// beyond loopback by `--dev-allow-remote`: it answers on 127.0.0.1 too). A page on
/// another site can make the browser resolve its own name to 127.0.0.1 (DNS rebinding)
/// and then read the dev host as same-origin; its `Host` still names that site.
fn dev_host_allowed<B>(req: &Request<B>) -> bool {
    let from_header = || {
        let value = req.headers().get("host")?.to_str().ok()?;
        value.parse::<hyper::http::uri::Authority>().ok()
    };
    let Some(authority) = req.uri().authority().cloned().or_else(from_header) else {
        return false; // no readable Host: nothing to vouch for it
    };
    // An address is never a rebinding: only names can be re-pointed.
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

async fn route<B: RequestBody>(state: &AppState, req: Request<B>, origin: Option<&str>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply::text(200, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") if state.is_draining() => reply::text(503, "text/plain", "draining\n"),
        (&Method::GET, "/readyz") => reply::text(200, "text/plain", "ready\n"),
        (&Method::GET, "/metrics") => metrics(state, &req, origin),
        (&Method::GET, "/") => web::file("index.html").expect("index.html is compiled in"),
        (&Method::GET, "/react") => web::file("react-demo.html").expect("react-demo.html is compiled in"),
        (&Method::GET, "/admin") => web::file("admin.html").expect("admin.html is compiled in"),
        (&Method::GET, "/dev/token") => web::dev_token(state, &req)
            .unwrap_or_else(|| reply::error(&state.config.policy, origin, &HostError::NotFound)),
        (&Method::GET, path) if path.starts_with("/web/") => {
            web::file(&path[5..]).unwrap_or_else(|| reply::error(&state.config.policy, origin, &HostError::NotFound))
        }
        _ => match sse(state, req, origin).await {
            Ok(res) => res,
            Err(err) => {
                state.metrics.refused(&err);
                tracing::debug!(reason = err.label(), "request refused: {err}");
                reply::error(&state.config.policy, origin, &err)
            }
        },
    }
}

async fn sse<B: RequestBody>(
    state: &AppState,
    req: Request<B>,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let (grant, signed_body) = edge::authorize(state, &req)?;
    let policy = &state.config.policy;
    match grant.route {
        Route::Preflight => Ok(reply::preflight(policy, origin)),
        Route::Stream => stream::open(state, &req, grant, origin).await,
        Route::Poll => poll::handle(state, &req, grant, origin).await,
        Route::Stats => {
            // A company's admins see their company only; super-admins see the host.
            let who = grant.identity.as_ref().ok_or(HostError::NotFound)?;
            let stats = if who.super_admin {
                state.broker.stats()
            } else {
                state.broker.company_stats(&who.company)
            };
            Ok(reply::json(policy, origin, 200, &stats))
        }
        Route::Publish | Route::TestBroadcast => publish::handle(state, req, grant, signed_body, origin).await,
        Route::AdminConnections => admin::connections(state, &req, grant, origin).await,
        Route::AdminDisconnect => admin::disconnect(state, req, grant, signed_body, origin).await,
        Route::AdminRevoke => admin::revoke(state, req, grant, signed_body, origin).await,
        Route::Other => Err(HostError::NotFound),
    }
}

/// The revocation feed, for Envoy's filter (the embedded one is answered in-process by
/// the same function): only requests signed with the edge secret get it.
fn revocation_feed<B>(state: &AppState, req: &Request<B>) -> Response<Body> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let answer = crate::admin::feed::answer(
        &state.config.policy,
        &state.broker.admin().revocations,
        req.uri().path(),
        header,
        crate::clock::unix_secs(),
    );
    reply::local(answer)
}

/// `GET /metrics`, for the operator's Prometheus: with `metrics_token_env` set, only for
/// a request carrying that token (compared by digest, so its timing says nothing).
fn metrics<B>(state: &AppState, req: &Request<B>, origin: Option<&str>) -> Response<Body> {
    if let Some(expected) = &state.config.metrics_token {
        use sha2::{Digest as _, Sha256};
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if Sha256::digest(given) != Sha256::digest(expected.expose()) {
            let err = HostError::Denied(sse_policy::DenyReason::Token(sse_policy::jwt::TokenError::Missing));
            state.metrics.refused(&err);
            return reply::error(&state.config.policy, origin, &err);
        }
    }
    let stats = state.broker.hub_stats();
    let top = crate::metrics::top_companies(&stats, state.config.metrics_top_companies, |names| {
        state.broker.company_counters(names)
    });
    let text = state
        .metrics
        .render(&stats, &top, state.broker.reader_lag(), state.edge.as_ref());
    reply::text(200, "application/openmetrics-text; version=1.0.0; charset=utf-8", text)
}
