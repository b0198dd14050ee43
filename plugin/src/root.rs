//! The root context: one per VM. Parses the configuration once and hands it to every
//! request context.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use sse_policy::cache::TokenCache;
use sse_policy::PolicyConfig;

use crate::metrics::Metrics;
use crate::request::FilterRequest;

/// Configuration, its cache of verified tokens, and metrics shared by the VM's request
/// contexts.
pub(crate) struct FilterRoot {
    config: Option<Rc<PolicyConfig>>,
    /// Belongs to `config`: replaced with it.
    tokens: Rc<RefCell<TokenCache>>,
    metrics: Rc<Metrics>,
}

impl Default for FilterRoot {
    fn default() -> Self {
        Self {
            config: None,
            tokens: Rc::new(RefCell::new(TokenCache::new(0))),
            metrics: Rc::default(),
        }
    }
}

impl Context for FilterRoot {}

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
                self.config = Some(Rc::new(config));
                log::info!("sse-filter: configured");
                true
            }
            Err(e) => {
                log::error!("sse-filter: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FilterRequest::new(
            self.config.clone(),
            self.tokens.clone(),
            self.metrics.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
