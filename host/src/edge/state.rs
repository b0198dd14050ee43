//! Per-VM state, the `T` of `Store<T>`: the plugin's shared parts, resource limits, and
//! the state of each live HTTP context (header maps, local reply).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::StoreLimits;

use super::shared::{Metrics, SharedData, SharedQueues};

/// A header map as the ABI sees it: lower-case names (pseudo-headers included) and
/// raw values, in order.
pub type HeaderMap = Vec<(Vec<u8>, Vec<u8>)>;

/// What every VM of a plugin shares.
#[derive(Debug)]
pub(crate) struct PluginShared {
    pub(crate) name: String,
    pub(crate) configuration: Vec<u8>,
    pub(crate) data: SharedData,
    pub(crate) queues: SharedQueues,
    pub(crate) metrics: Metrics,
    /// Where `proxy_http_call` goes (`None`: calls are refused).
    pub(crate) upstream: Option<Upstream>,
}

/// The embedded host's answer to a filter's HTTP callout: given the cluster, the request
/// headers (pseudo-headers included) and body, the reply, or `None` for a failed call
/// (the filter then sees a response without headers, as from Envoy). It runs inside the
/// VM's callback, under the VM's lock: it must answer from memory, quickly.
#[derive(Clone)]
pub struct Upstream(pub Arc<UpstreamFn>);

/// The function behind an [`Upstream`]: (cluster, headers, body) → reply.
pub type UpstreamFn = dyn Fn(&str, &HeaderMap, &[u8]) -> Option<LocalReply> + Send + Sync;

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream")
    }
}

/// A callout made during a callback, answered when the callback returns.
#[derive(Debug)]
pub(crate) struct PendingCall {
    /// The context that made it (it gets the response).
    pub(crate) context: u32,
    pub(crate) token: u32,
    pub(crate) cluster: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A reply the filter sent itself (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Headers, as the filter gave them.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

/// One HTTP context's state.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub(crate) request_headers: HeaderMap,
    pub(crate) response_headers: HeaderMap,
    pub(crate) local_reply: Option<LocalReply>,
    pub(crate) source: Option<SocketAddr>,
    pub(crate) connection_id: u64,
    pub(crate) closed: bool,
}

/// Store data of one VM.
#[derive(Debug)]
pub(crate) struct HostState {
    pub(crate) plugin: Arc<PluginShared>,
    pub(crate) limits: StoreLimits,
    pub(crate) root_id: u32,
    pub(crate) streams: HashMap<u32, StreamState>,
    /// The context hostcalls act on (set per callback, or by `proxy_set_effective_context`).
    pub(crate) current: u32,
    /// The request body during an `on_request_body` call (here, not per context: a
    /// context lives as long as its stream, the body only as long as that call).
    pub(crate) request_body: Option<Vec<u8>>,
    pub(crate) tick_period_ms: u32,
    /// Callouts waiting for the current callback to return.
    pub(crate) calls: Vec<PendingCall>,
    pub(crate) next_call_token: u32,
    /// The response headers and body of the callout being answered.
    pub(crate) call_response: Option<(HeaderMap, Vec<u8>)>,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<PluginShared>, limits: StoreLimits) -> Self {
        Self {
            plugin,
            limits,
            root_id: 1,
            streams: HashMap::new(),
            current: 1,
            request_body: None,
            tick_period_ms: 0,
            calls: Vec::new(),
            next_call_token: 0,
            call_response: None,
        }
    }

    pub(crate) fn stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.current)
    }
}
