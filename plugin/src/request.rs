//! The per-request context: every decision comes from `sse-policy`; this file only
//! moves bytes between the proxy and the policy.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use sse_policy::decision::{error_body, DenyReason, ErrorCode, Grant, Route};
use sse_policy::identity::{self, HEADER_PREFIX};
use sse_policy::request::{strip_cookie, strip_query_param};
use sse_policy::{decide, reply, PolicyConfig, Request, TokenSource};

use crate::metrics::Metrics;
use crate::slots::{self, Acquire};

pub(crate) struct FilterRequest {
    config: Option<Rc<PolicyConfig>>,
    metrics: Rc<Metrics>,
    /// The company whose connection slot this stream holds; taken exactly once on end.
    slot: Option<String>,
}

impl FilterRequest {
    pub(crate) fn new(config: Option<Rc<PolicyConfig>>, metrics: Rc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            slot: None,
        }
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

    fn unavailable(&self, config: Option<&PolicyConfig>, message: &str) -> Action {
        self.metrics.denied("unavailable");
        let code = ErrorCode::Unavailable;
        let headers = match config {
            Some(c) => {
                let mut h = reply::error_headers(c, code, false);
                h.extend(reply::cors_headers(&c.cors, self.header_str("origin").as_deref()));
                h
            }
            None => vec![
                ("content-type", "application/json".to_owned()),
                ("retry-after", "5".to_owned()),
            ],
        };
        self.send(code.status(), headers, &error_body(code, message))
    }

    fn header_str(&self, name: &str) -> Option<String> {
        self.get_http_request_header_bytes(name)
            .and_then(|v| String::from_utf8(v).ok())
    }

    fn release_slot(&mut self) {
        if let Some(company) = self.slot.take() {
            slots::release(&company);
            self.metrics.stream_closed();
        }
    }

    fn forward(&mut self, config: &PolicyConfig, grant: Grant, method: &str, path: &str, now: u64) -> Action {
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        match grant.token_source {
            Some(TokenSource::Header) => self.set_http_request_header("authorization", None),
            Some(TokenSource::Cookie) => {
                let name = config.tokens.cookie.as_deref().unwrap_or_default();
                let cookie = self.cookie_header().unwrap_or_default();
                self.set_http_request_header("cookie", strip_cookie(&cookie, name).as_deref());
            }
            Some(TokenSource::Query) => {
                let name = config.tokens.query_param.as_deref().unwrap_or_default();
                let rest = strip_query_param(query, name);
                let target = if rest.is_empty() {
                    path_only.to_owned()
                } else {
                    format!("{path_only}?{rest}")
                };
                self.set_http_request_header(":path", Some(&target));
            }
            None => {}
        }
        if let Some(who) = &grant.identity {
            for (name, value) in identity::sign(&config.edge.secret, method, path_only, who, &grant.channels, now) {
                self.add_http_request_header(name, &value);
            }
        }
        self.metrics.allowed();
        Action::Continue
    }

    /// All `cookie` headers joined: HTTP/2 clients may send one per cookie.
    fn cookie_header(&self) -> Option<String> {
        let all: Vec<String> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .filter_map(|(_, v)| String::from_utf8(v).ok())
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }
}

impl Context for FilterRequest {
    fn on_done(&mut self) -> bool {
        self.release_slot();
        true
    }
}

impl HttpContext for FilterRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return self.unavailable(None, "edge filter is not configured");
        };
        // Identity headers are the edge's alone: drop whatever the client sent.
        for (name, _) in self.get_http_request_headers_bytes() {
            if name.to_ascii_lowercase().starts_with(HEADER_PREFIX) {
                self.set_http_request_header(&name, None);
            }
        }
        let method = self.header_str(":method").unwrap_or_default();
        let origin = self.header_str("origin");
        let Some(path) = self.header_str(":path") else {
            return self.deny(
                &config,
                DenyReason::InvalidRequest("path is not UTF-8"),
                origin.as_deref(),
            );
        };
        let authorization = self.get_http_request_header_bytes("authorization");
        let cookie = self.cookie_header();
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let req = Request::new(&method, &path)
            .with_authorization(authorization.as_deref())
            .with_cookie(cookie.as_deref().map(str::as_bytes));
        let grant = match decide(&config, &req, now) {
            sse_policy::Decision::Deny(reason) => return self.deny(&config, reason, origin.as_deref()),
            sse_policy::Decision::Allow(grant) => grant,
        };
        match grant.route {
            Route::Preflight => {
                let mut headers = reply::cors_headers(&config.cors, origin.as_deref());
                headers.extend(reply::preflight_headers(&config.cors));
                return self.send(204, headers, "");
            }
            Route::Stream => {
                let company = grant.identity.as_ref().map(|i| i.company.clone()).unwrap_or_default();
                match slots::acquire(&company, config.limits.max_connections_per_company) {
                    Acquire::Taken => {
                        self.slot = Some(company);
                        self.metrics.stream_opened();
                    }
                    Acquire::Full => return self.deny(&config, DenyReason::TooManyConnections, origin.as_deref()),
                    Acquire::Failed => return self.unavailable(Some(&config), "connection limit store unavailable"),
                }
            }
            _ => {}
        }
        self.forward(&config, grant, &method, &path, now)
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
