//! Edge mode `wasm`: requests under the SSE prefix go through the embedded filter chain
//! before the hub sees them, and responses go back through it.

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap as Headers, Request, Response, StatusCode};

use super::reply::{self, Body};
use super::routes::RequestBody;
use crate::edge::{Contexts, HeaderMap, Verdict, WasmEdge};
use crate::error::HostError;
use crate::state::AppState;

/// Where the request came from, for the filter's properties.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) peer: std::net::SocketAddr,
    pub(crate) id: u64,
}

fn to_pairs(pseudo: &[(&str, &str)], headers: &Headers) -> HeaderMap {
    let mut map: HeaderMap = pseudo
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    map.extend(
        headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    map
}

/// Rebuilds real headers from the filter's map; pseudo-headers are returned apart.
fn from_pairs(map: HeaderMap) -> (Headers, HeaderMap) {
    let mut headers = Headers::new();
    let mut pseudo = Vec::new();
    for (k, v) in map {
        if k.first() == Some(&b':') {
            pseudo.push((k, v));
        } else if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&k), HeaderValue::from_bytes(&v)) {
            headers.append(name, value);
        }
    }
    (headers, pseudo)
}

/// What the chain made of a request.
pub(crate) enum Filtered<B> {
    /// Go on with the (possibly rewritten) request; its contexts end with the response.
    Forward(Request<B>, Contexts),
    /// Send this response instead (the filter's local reply, or 503 if it failed).
    Answered(Response<Body>),
}

/// The company of a stream the filter admitted (it took a connection slot for it): a
/// stream route, forwarded with the identity the filter signed.
fn admitted_stream(
    policy: &sse_policy::PolicyConfig,
    method: &str,
    target: &str,
    headers: &hyper::HeaderMap,
) -> Option<String> {
    let path = target.split('?').next().unwrap_or(target);
    if sse_policy::route_of(policy, method, path) != Ok(sse_policy::Route::Stream) {
        return None;
    }
    let company = headers.get(sse_policy::identity::COMPANY)?.to_str().ok()?;
    sse_policy::identity::decode_value(company).ok()
}

/// A request body after the chain: as it came when no filter read it, else the bytes
/// the filters saw (they may have signed its digest, so the host reads exactly these).
pub(crate) type Forwarded<B> = Either<B, Full<Bytes>>;

/// Runs the request through the chain. The body is read (at most
/// `publish.max_body_bytes`: no route takes more) only when a filter pauses to see it.
pub(crate) async fn filter_request<B: RequestBody>(
    state: &AppState,
    edge: &WasmEdge,
    req: Request<B>,
    conn: ConnInfo,
    origin: Option<&str>,
) -> Filtered<Forwarded<B>> {
    let (mut parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let authority = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let pairs = to_pairs(
        &[
            (":method", parts.method.as_str()),
            (":path", &target),
            (":authority", &authority),
            (":scheme", "http"),
        ],
        &parts.headers,
    );
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!("edge filter failed, answering 503: {e}");
        state.metrics.refused(&HostError::EdgeFailed);
        reply::error(&state.config.policy, origin, &HostError::EdgeFailed)
    };
    let has_body = !body.is_end_stream();
    let (verdict, mut contexts) = match edge.on_request(pairs, has_body, Some(conn.peer), conn.id) {
        Ok(decided) => decided,
        Err(e) => return Filtered::Answered(fail(&e)),
    };
    let (verdict, body) = match verdict {
        Verdict::NeedsBody(paused) => {
            let (max, within) = (state.config.publish.max_body_bytes, state.config.http.head_timeout);
            let bytes = match super::publish::read_body(body, max, within).await {
                Ok(bytes) => bytes,
                // The contexts end here with the request: on_log, on_done, on_delete.
                Err(e) => return Filtered::Answered(reply::error(&state.config.policy, origin, &e)),
            };
            match edge.on_request_body(&mut contexts, paused, &bytes) {
                Ok(Verdict::NeedsBody(_)) => return Filtered::Answered(fail(&"a filter paused twice")),
                Ok(verdict) => (verdict, Either::Right(Full::new(bytes))),
                Err(e) => return Filtered::Answered(fail(&e)),
            }
        }
        verdict => (verdict, Either::Left(body)),
    };
    match verdict {
        Verdict::Reply(local) => {
            let (headers, _) = from_pairs(local.headers);
            let mut res = Response::new(reply::full(local.body));
            *res.status_mut() = StatusCode::from_u16(local.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            *res.headers_mut() = headers;
            drop(contexts); // the stream ends here: on_log, on_done, on_delete
            Filtered::Answered(res)
        }
        Verdict::Forward(map) => {
            let (headers, pseudo) = from_pairs(map);
            if let Some(company) = admitted_stream(&state.config.policy, parts.method.as_str(), &target, &headers) {
                contexts.took_slot(company);
            }
            if let Some((_, path)) = pseudo.iter().find(|(k, _)| k == b":path") {
                match hyper::Uri::try_from(path.as_slice()) {
                    Ok(uri) => parts.uri = uri,
                    Err(e) => return Filtered::Answered(fail(&format!("filter set an invalid :path: {e}"))),
                }
            }
            parts.headers = headers;
            Filtered::Forward(Request::from_parts(parts, body), contexts)
        }
        Verdict::NeedsBody(_) => Filtered::Answered(fail(&"a filter paused twice")),
    }
}

/// Runs the response headers through the chain and ties the contexts to the body, so
/// the filters see the stream end when the client does.
pub(crate) fn filter_response(
    state: &AppState,
    edge: &WasmEdge,
    contexts: Contexts,
    res: Response<Body>,
    origin: Option<&str>,
) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    let status = parts.status.as_u16().to_string();
    let map = to_pairs(&[(":status", &status)], &parts.headers);
    match edge.on_response(&contexts, map) {
        Ok(map) => {
            parts.headers = from_pairs(map).0;
            Response::from_parts(
                parts,
                // The contexts live as long as the body, so the filters see the stream end
                // when the client does.
                reply::Guarded::new(body, contexts).boxed(),
            )
        }
        Err(e) => {
            tracing::error!("edge filter failed on response headers, answering 503: {e}");
            state.metrics.refused(&HostError::EdgeFailed);
            reply::error(&state.config.policy, origin, &HostError::EdgeFailed)
        }
    }
}
