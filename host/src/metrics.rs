//! `GET /metrics`: Prometheus text exposition via `prometheus-client`. Hub numbers are
//! read at scrape time (no double bookkeeping); edge denials are counted as they happen.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::edge::{MetricKind, WasmEdge};
use crate::hub::stats::StatsSnapshot;

/// Label of the denial counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A stable reason label (see `HostError::label`).
    pub reason: &'static str,
}

/// Label of the connection counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabel {
    /// `h1`, `h1_fast` (the stream fast path) or `h2`.
    pub protocol: &'static str,
    /// `true` on the host's own TLS.
    pub tls: &'static str,
}

/// Metrics the HTTP layer records.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Requests refused, by reason.
    pub denied: Family<ReasonLabel, Counter>,
    /// Connections served, by protocol: how many streams share a connection (HTTP/2)
    /// shows in streams opened per connection.
    pub connections: Family<ConnectionLabel, Counter>,
}

impl HttpMetrics {
    /// Counts one connection served with `protocol`.
    pub fn connection(&self, protocol: &'static str, tls: bool) {
        let tls = if tls { "true" } else { "false" };
        self.connections.get_or_create(&ConnectionLabel { protocol, tls }).inc();
    }
}

impl HttpMetrics {
    /// Renders every metric as Prometheus text.
    pub fn render(&self, s: &StatsSnapshot, edge: Option<&WasmEdge>) -> String {
        let c = &s.counters;
        let mut registry = Registry::with_prefix("sse");
        registry.register(
            "connections",
            "Open SSE streams",
            ConstGauge::new(s.total_connections as i64),
        );
        registry.register("channels", "Channels in memory", ConstGauge::new(s.channels as i64));
        registry.register(
            "history_events",
            "Events retained for resume",
            ConstGauge::new(s.history_size as i64),
        );
        registry.register("published", "Events published", ConstCounter::new(c.published));
        registry.register(
            "delivered",
            "Events queued to subscribers (live and replayed)",
            ConstCounter::new(c.delivered),
        );
        registry.register("streams_opened", "Streams opened", ConstCounter::new(c.streams_opened));
        registry.register("resumed", "Streams resumed without loss", ConstCounter::new(c.resumed));
        registry.register("resets", "Reset events sent", ConstCounter::new(c.resets));
        registry.register(
            "slow_consumer_drops",
            "Subscribers dropped for falling behind",
            ConstCounter::new(c.slow_consumer_drops),
        );
        registry.register(
            "poll_requests",
            "Poll requests answered",
            ConstCounter::new(c.poll_requests),
        );
        registry.register("denied", "Requests refused, by reason", self.denied.clone());
        registry.register(
            "http_connections",
            "Connections served, by protocol and TLS",
            self.connections.clone(),
        );
        let wasm = registry.sub_registry_with_prefix("wasm");
        for (plugin, m) in edge.map(WasmEdge::metrics).unwrap_or_default() {
            // prometheus-client appends `_total` to counters itself.
            let base = m.name.strip_suffix("_total").unwrap_or(&m.name);
            let name = format!("{plugin}_{base}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>();
            let help = format!("Filter metric {} of plugin {plugin}", m.name);
            match m.kind {
                MetricKind::Counter => wasm.register(name, help, ConstCounter::new(m.value.max(0) as u64)),
                MetricKind::Gauge | MetricKind::Histogram => wasm.register(name, help, ConstGauge::new(m.value)),
            }
        }
        let mut out = String::new();
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}
