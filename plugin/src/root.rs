//! The root context: one per VM. Parses the configuration once and hands it to every
//! request context.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use sse_policy::cache::TokenCache;
use sse_policy::revocation::{sign_feed, RevocationList};
use sse_policy::PolicyConfig;

use crate::metrics::Metrics;
use crate::request::FilterRequest;
use crate::revocations::Revocations;

/// Configuration, its cache of verified tokens, and metrics shared by the VM's request
/// contexts.
pub(crate) struct FilterRoot {
    config: Option<Rc<PolicyConfig>>,
    /// Belongs to `config`: replaced with it.
    tokens: Rc<RefCell<TokenCache>>,
    metrics: Rc<Metrics>,
    revocations: Rc<RefCell<Revocations>>,
}

impl Default for FilterRoot {
    fn default() -> Self {
        Self {
            config: None,
            tokens: Rc::new(RefCell::new(TokenCache::new(0))),
            metrics: Rc::default(),
            revocations: Rc::default(),
        }
    }
}

impl FilterRoot {
    fn now(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Asks the host for the revocation list, unless a call is already in flight (and
    /// not overdue: the proxy answers every call, but a lost one must not stop refreshes).
    fn refresh_revocations(&mut self) {
        let Some(config) = self.config.clone() else { return };
        let feed = &config.edge.revocations;
        let now = self.now();
        let overdue = u64::from(feed.timeout_ms / 1000) + 2;
        if let Some((_, sent)) = self.revocations.borrow().in_flight {
            if now.saturating_sub(sent) < overdue {
                return;
            }
        }
        let signed = sign_feed(&config.edge.secret, &feed.path, now);
        let etag = self.revocations.borrow().etag.clone();
        let mut headers = vec![
            (":method", "GET"),
            (":path", feed.path.as_str()),
            (":authority", feed.cluster.as_str()),
        ];
        headers.extend(signed.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(etag) = &etag {
            headers.push(("if-none-match", etag.as_str()));
        }
        let timeout = Duration::from_millis(u64::from(feed.timeout_ms));
        match self.dispatch_http_call(&feed.cluster, headers, None, vec![], timeout) {
            Ok(token) => self.revocations.borrow_mut().in_flight = Some((token, now)),
            Err(status) => log::warn!("sse-filter: revocation callout to {} failed: {status:?}", feed.cluster),
        }
    }
}

impl Context for FilterRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let now = self.now();
        let mut revocations = self.revocations.borrow_mut();
        // Only the call in flight counts: a late answer to an overdue one may be older
        // than a list already taken.
        if revocations.in_flight.is_none_or(|(t, _)| t != token) {
            return;
        }
        revocations.in_flight = None;
        let header = |name: &str| self.get_http_call_response_header(name);
        match header(":status").as_deref() {
            Some("200") => {
                let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
                match RevocationList::from_feed(&body) {
                    Ok(list) => {
                        self.metrics.revocations(list.len());
                        revocations.replace(list, header("etag"), now);
                    }
                    Err(e) => log::warn!("sse-filter: revocation feed unreadable: {e}"),
                }
            }
            Some("304") => revocations.confirm(now),
            status => log::warn!("sse-filter: revocation feed answered {status:?}"),
        }
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("sse-filter: no plugin configuration given (expected the policy JSON)");
            return false;
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(_) => {
                log::error!("sse-filter: plugin configuration is not UTF-8");
                return false;
            }
        };
        match PolicyConfig::from_json(text) {
            Ok(config) => {
                for warning in config.warnings() {
                    log::warn!("sse-filter: {warning}");
                }
                crate::slots::seed();
                self.metrics = Rc::new(Metrics::define());
                self.tokens = Rc::new(RefCell::new(TokenCache::new(config.jwt.cache_size)));
                self.set_tick_period(Duration::from_millis(u64::from(config.edge.revocations.refresh_ms)));
                self.config = Some(Rc::new(config));
                self.revocations.borrow_mut().started(self.now());
                self.refresh_revocations();
                log::info!("sse-filter: configured");
                true
            }
            Err(e) => {
                log::error!("sse-filter: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.refresh_revocations();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FilterRequest::new(
            self.config.clone(),
            self.tokens.clone(),
            self.metrics.clone(),
            self.revocations.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
