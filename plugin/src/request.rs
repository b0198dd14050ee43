//! The per-request context: every decision comes from `sse-policy`; this file only
//! moves bytes between the proxy and the policy. The request headers are read with one
//! hostcall and, when they change, written back with one.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use sse_policy::cache::TokenCache;
use sse_policy::decision::{error_body, DenyReason, ErrorCode, Grant, Route};
use sse_policy::identity::{self, HEADER_PREFIX};
use sse_policy::request::{strip_cookie, strip_query_param};
use sse_policy::{decide_cached, reply, PolicyConfig, Request, TokenSource};

use crate::metrics::Metrics;
use crate::revocations::Revocations;
use crate::slots::{self, Acquire};

pub(crate) struct FilterRequest {
    config: Option<Rc<PolicyConfig>>,
    /// Verified tokens of this VM, for `config`.
    tokens: Rc<RefCell<TokenCache>>,
    metrics: Rc<Metrics>,
    revocations: Rc<RefCell<Revocations>>,
    /// The company whose connection slot this stream holds; taken exactly once on end.
    slot: Option<String>,
    /// An allowed publish whose body is still arriving: its identity is signed over the
    /// body's digest once the whole body is here. Boxed: every stream's context carries
    /// this field for its whole life, and streams never use it.
    pending: Option<Box<(Rc<PolicyConfig>, Headers, Grant)>>,
}

/// The request headers as the proxy gave them (names lower-case), read once.
struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.bytes(name).and_then(|v| String::from_utf8(v.to_vec()).ok())
    }

    /// All `cookie` headers joined: HTTP/2 clients may send one per cookie.
    fn cookie(&self) -> Option<String> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == "cookie")
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// True when the client sent headers only the edge may set.
    fn has_edge_headers(&self) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().starts_with(HEADER_PREFIX))
    }
}

impl FilterRequest {
    pub(crate) fn new(
        config: Option<Rc<PolicyConfig>>,
        tokens: Rc<RefCell<TokenCache>>,
        metrics: Rc<Metrics>,
        revocations: Rc<RefCell<Revocations>>,
    ) -> Self {
        Self {
            config,
            tokens,
            metrics,
            revocations,
            slot: None,
            pending: None,
        }
    }

    fn now(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn send(&self, status: u16, headers: Vec<(&'static str, String)>, body: &str) -> Action {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.send_http_response(u32::from(status), headers, Some(body.as_bytes()));
        Action::Pause
    }

    fn deny(&self, config: &PolicyConfig, reason: DenyReason, origin: Option<&str>) -> Action {
        self.metrics.denied(reason.label());
        self.send(
            reason.code().status(),
            reply::deny_headers(config, &reason, origin),
            &reason.body(),
        )
    }

    fn unavailable(&self, config: Option<&PolicyConfig>, origin: Option<&str>, message: &str) -> Action {
        self.metrics.denied("unavailable");
        let code = ErrorCode::Unavailable;
        let headers = match config {
            Some(c) => {
                let mut h = reply::error_headers(c, code, false);
                h.extend(reply::cors_headers(&c.cors, origin));
                h
            }
            None => vec![
                ("content-type", "application/json".to_owned()),
                ("retry-after", "5".to_owned()),
            ],
        };
        self.send(code.status(), headers, &error_body(code, message))
    }

    fn release_slot(&mut self) {
        if let Some(company) = self.slot.take() {
            slots::release(&company);
            self.metrics.stream_closed();
        }
    }

    /// Forwards the request: client `x-sse-*` headers and the token removed, the signed
    /// identity (over `body`, the whole request body) added, in one write of the header
    /// map (none if nothing changed).
    fn forward(&mut self, config: &PolicyConfig, headers: Headers, grant: Grant, body: &[u8]) -> Action {
        let now = self.now();
        let method = headers.string(":method").unwrap_or_default();
        let target = headers.string(":path").unwrap_or_default();
        let (path_only, query) = target.split_once('?').unwrap_or((&target, ""));
        let changed = headers.has_edge_headers() || grant.token_source.is_some() || grant.identity.is_some();
        if !changed {
            self.metrics.allowed();
            return Action::Continue;
        }
        let cookie = headers.cookie();
        // What the host will receive, query included: the signature covers it.
        let mut forwarded = target.clone();
        let mut out: Vec<(String, Vec<u8>)> = headers
            .0
            .into_iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().starts_with(HEADER_PREFIX))
            .filter(|(k, _)| match grant.token_source {
                Some(TokenSource::Header) => k != "authorization",
                Some(TokenSource::Cookie) => k != "cookie",
                _ => true,
            })
            .collect();
        match grant.token_source {
            Some(TokenSource::Cookie) => {
                let name = config.tokens.cookie.as_deref().unwrap_or_default();
                if let Some(rest) = strip_cookie(&cookie.unwrap_or_default(), name) {
                    out.push(("cookie".into(), rest.into_bytes()));
                }
            }
            Some(TokenSource::Query) => {
                let name = config.tokens.query_param.as_deref().unwrap_or_default();
                let rest = strip_query_param(query, name);
                let target = if rest.is_empty() {
                    path_only.to_owned()
                } else {
                    format!("{path_only}?{rest}")
                };
                for (k, v) in &mut out {
                    if k == ":path" {
                        *v = target.clone().into_bytes();
                    }
                }
                forwarded = target;
            }
            _ => {}
        }
        if let Some(who) = &grant.identity {
            let signed = identity::sign(
                &config.edge.secret,
                &method,
                &forwarded,
                who,
                &grant.channels,
                body,
                now,
            );
            for (name, value) in signed {
                out.push((name.to_owned(), value.into_bytes()));
            }
        }
        self.set_http_request_headers_bytes(out.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect());
        self.metrics.allowed();
        Action::Continue
    }
}

impl Context for FilterRequest {
    fn on_done(&mut self) -> bool {
        self.release_slot();
        true
    }
}

impl HttpContext for FilterRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = Headers(self.get_http_request_headers_bytes());
        let origin = headers.string("origin");
        let origin = origin.as_deref();
        let Some(config) = self.config.clone() else {
            return self.unavailable(None, origin, "edge filter is not configured");
        };
        let method = headers.string(":method").unwrap_or_default();
        let Some(path) = headers.string(":path") else {
            return self.deny(&config, DenyReason::InvalidRequest("path is not UTF-8"), origin);
        };
        let cookie = headers.cookie();
        let now = self.now();
        let authorization = headers
            .0
            .iter()
            .filter(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_slice());
        let req = Request::new(&method, &path)
            .with_authorization_values(authorization)
            .with_cookie(cookie.as_deref().map(str::as_bytes))
            .with_content_type(headers.bytes("content-type"));
        let decision = decide_cached(&config, &mut self.tokens.borrow_mut(), &req, now);
        let grant = match decision {
            sse_policy::Decision::Deny(reason) => return self.deny(&config, reason, origin),
            sse_policy::Decision::Allow(grant) => grant,
        };
        if let Some(who) = &grant.identity {
            let max_stale = config.edge.revocations.max_stale_secs;
            if let Err(reason) = self.revocations.borrow().check(who, now, max_stale) {
                return self.deny(&config, reason, origin);
            }
        }
        match grant.route {
            Route::Preflight => {
                let mut h = reply::cors_headers(&config.cors, origin);
                h.extend(reply::preflight_headers(&config.cors));
                return self.send(204, h, "");
            }
            Route::Stream => {
                let company = grant.identity.as_ref().map(|i| i.company.clone()).unwrap_or_default();
                match slots::acquire(&company, config.limits.connections_for(&company)) {
                    Acquire::Taken => {
                        self.slot = Some(company);
                        self.metrics.stream_opened();
                    }
                    Acquire::Full => return self.deny(&config, DenyReason::TooManyConnections, origin),
                    Acquire::Failed => {
                        return self.unavailable(Some(&config), origin, "connection limit store unavailable")
                    }
                }
            }
            _ => {}
        }
        if !end_of_stream && grant.route.has_body() && grant.identity.is_some() {
            // The signature covers a publish's body (a captured one cannot carry other
            // events): hold the headers until it is all here. Envoy buffers it, up to the
            // route's buffer limit (then 413); it needs `allow_on_headers_stop_iteration`.
            // Other routes read no body: they are signed over none.
            self.pending = Some(Box::new((config, headers, grant)));
            return Action::Pause;
        }
        self.forward(&config, headers, grant, b"")
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A held publish ends here, not in the body callback: refuse it rather than let
        // the proxy resume headers that were never signed (nor stripped of the token).
        match self.pending.take().map(|p| *p) {
            Some((config, headers, _)) => {
                let origin = headers.string("origin");
                self.deny(
                    &config,
                    DenyReason::InvalidRequest("request trailers are not accepted"),
                    origin.as_deref(),
                )
            }
            None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // buffered by the proxy until the end
        }
        let Some((config, headers, grant)) = self.pending.take().map(|p| *p) else {
            return Action::Continue;
        };
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.forward(&config, headers, grant, &body)
    }
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let is_event_stream = self
            .get_http_response_header_bytes("content-type")
            .is_some_and(|v| v.starts_with(b"text/event-stream"));
        if is_event_stream {
            self.set_http_response_header("cache-control", Some("no-cache, no-transform"));
            self.set_http_response_header("x-accel-buffering", Some("no"));
            self.set_http_response_header("content-length", None);
        }
        // Never Pause here: that would hold the stream until resumed.
        Action::Continue
    }

    fn on_log(&mut self) {
        self.release_slot();
    }
}
