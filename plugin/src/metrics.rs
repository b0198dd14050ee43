//! Filter metrics through the proxy-wasm metrics ABI. Envoy exports them with the
//! `wasmcustom.` prefix; the embedded host exports them on `/metrics`.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids of one VM. Definition failures leave a metric unset: metrics must never
/// turn into request failures.
#[derive(Default)]
pub(crate) struct Metrics {
    allowed: Option<u32>,
    active_streams: Option<u32>,
    revocations: Option<u32>,
    denied: RefCell<HashMap<&'static str, Option<u32>>>,
}

impl Metrics {
    pub(crate) fn define() -> Self {
        Self {
            allowed: hostcalls::define_metric(MetricType::Counter, "sse_filter_allowed_total").ok(),
            active_streams: hostcalls::define_metric(MetricType::Gauge, "sse_filter_active_streams").ok(),
            revocations: hostcalls::define_metric(MetricType::Gauge, "sse_filter_revocations").ok(),
            denied: RefCell::default(),
        }
    }

    pub(crate) fn allowed(&self) {
        bump(self.allowed, 1);
    }

    pub(crate) fn stream_opened(&self) {
        bump(self.active_streams, 1);
    }

    pub(crate) fn stream_closed(&self) {
        bump(self.active_streams, -1);
    }

    /// Entries in the VM's revocation list (each VM sets the same value).
    pub(crate) fn revocations(&self, n: usize) {
        if let Some(id) = self.revocations {
            let _ = hostcalls::record_metric(id, n as u64);
        }
    }

    pub(crate) fn denied(&self, reason: &'static str) {
        let id = *self.denied.borrow_mut().entry(reason).or_insert_with(|| {
            hostcalls::define_metric(MetricType::Counter, &format!("sse_filter_denied_total.reason.{reason}")).ok()
        });
        bump(id, 1);
    }
}

fn bump(id: Option<u32>, delta: i64) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, delta);
    }
}
