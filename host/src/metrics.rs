//! `GET /metrics`: Prometheus text exposition via `prometheus-client`. Hub numbers are
//! read at scrape time (no double bookkeeping); edge denials are counted as they happen.
//!
//! Per-company series are bounded: the `metrics_top_companies` companies with the most
//! open streams get their own (`company` label), the rest are summed into
//! `sse_company_connections_other`. A company's counters restart when it is dropped
//! while idle; Prometheus reads that as a counter reset.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use std::time::Duration;

use crate::edge::{MetricKind, WasmEdge};
use crate::hub::stats::{CountersSnapshot, StatsSnapshot};

/// Label of the denial counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A stable reason label (see `HostError::label`).
    pub reason: &'static str,
}

/// Label of the per-company series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CompanyLabel {
    /// The company ID (validated by the policy before any series has it).
    pub company: String,
}

/// Label of the resets by reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResetLabel {
    reason: &'static str,
}

/// The companies with the most open streams, and what the others hold in all.
#[derive(Debug, Default)]
pub struct TopCompanies {
    /// (company, open streams, its counters), most streams first.
    pub companies: Vec<(String, u64, CountersSnapshot)>,
    /// Open streams of every other company.
    pub other_connections: u64,
}

/// Picks the `n` companies with the most open streams in `stats` (ties by name);
/// `counters` gives the picked companies' counters, in order, in one call.
pub fn top_companies(
    stats: &StatsSnapshot,
    n: usize,
    counters: impl FnOnce(&[String]) -> Vec<CountersSnapshot>,
) -> TopCompanies {
    let mut all: Vec<(&String, &u64)> = stats.connections_by_company.iter().collect();
    let other_connections = if n == 0 {
        all.iter().map(|(_, c)| **c).sum()
    } else {
        all.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        all.iter().skip(n).map(|(_, c)| **c).sum()
    };
    all.truncate(n);
    let names: Vec<String> = all.iter().map(|(name, _)| (*name).clone()).collect();
    let counted = if names.is_empty() { Vec::new() } else { counters(&names) };
    let companies = names
        .into_iter()
        .zip(all.iter().map(|(_, c)| **c))
        .zip(counted)
        .map(|((name, c), counters)| (name, c, counters))
        .collect();
    TopCompanies {
        companies,
        other_connections,
    }
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
#[derive(Debug)]
pub struct HttpMetrics {
    /// Requests refused, by reason.
    pub denied: Family<ReasonLabel, Counter>,
    /// Connections served, by protocol: how many streams share a connection (HTTP/2)
    /// shows in streams opened per connection.
    pub connections: Family<ConnectionLabel, Counter>,
}

/// Refusal reasons the shipped alert rules watch: their series exist from the start, so
/// `increase()` sees the first burst (a series born with its first sample has no rise).
const WATCHED_REASONS: [&str; 5] = [
    "too_many_connections",
    "host_full",
    "rate_limited",
    "edge_failure",
    "store_unavailable",
];

impl Default for HttpMetrics {
    fn default() -> Self {
        let denied = Family::<ReasonLabel, Counter>::default();
        for reason in WATCHED_REASONS {
            let _ = denied.get_or_create(&ReasonLabel { reason });
        }
        Self {
            denied,
            connections: Family::default(),
        }
    }
}

impl HttpMetrics {
    /// Counts one refused request by its reason.
    pub fn refused(&self, err: &crate::error::HostError) {
        self.denied.get_or_create(&ReasonLabel { reason: err.label() }).inc();
    }

    /// Counts one connection served with `protocol`.
    pub fn connection(&self, protocol: &'static str, tls: bool) {
        let tls = if tls { "true" } else { "false" };
        self.connections.get_or_create(&ConnectionLabel { protocol, tls }).inc();
    }
}

impl HttpMetrics {
    /// Renders every metric as Prometheus text.
    pub fn render(
        &self,
        s: &StatsSnapshot,
        top: &TopCompanies,
        reader_lag: Option<Duration>,
        edge: Option<&WasmEdge>,
    ) -> String {
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
        let by_reason = Family::<ResetLabel, Counter>::default();
        for (reason, n) in &c.resets_by_reason {
            by_reason.get_or_create(&ResetLabel { reason }).inc_by(*n);
        }
        registry.register(
            "resets_by_reason",
            "Reset events sent, by reason (too_old, restarted, unknown_id: a resume that could not be exact; slow_consumer)",
            by_reason,
        );
        register_companies(&mut registry, top);
        if let Some(lag) = reader_lag {
            registry.register(
                "redis_reader_lag_seconds",
                "Age of the newest event in the Redis reader's latest read, when read",
                ConstGauge::new(lag.as_secs_f64()),
            );
        }
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

/// The per-company series of the top companies.
fn register_companies(registry: &mut Registry, top: &TopCompanies) {
    let connections = Family::<CompanyLabel, prometheus_client::metrics::gauge::Gauge>::default();
    let published = Family::<CompanyLabel, Counter>::default();
    let delivered = Family::<CompanyLabel, Counter>::default();
    let resets = Family::<CompanyLabel, Counter>::default();
    let drops = Family::<CompanyLabel, Counter>::default();
    for (company, open, c) in &top.companies {
        let label = CompanyLabel {
            company: company.clone(),
        };
        connections.get_or_create(&label).set(*open as i64);
        published.get_or_create(&label).inc_by(c.published);
        delivered.get_or_create(&label).inc_by(c.delivered);
        resets.get_or_create(&label).inc_by(c.resets);
        drops.get_or_create(&label).inc_by(c.slow_consumer_drops);
    }
    let company = registry.sub_registry_with_prefix("company");
    company.register("connections", "Open SSE streams of the top companies", connections);
    company.register(
        "connections_other",
        "Open SSE streams of every company not in the top ones",
        ConstGauge::new(top.other_connections as i64),
    );
    company.register("published", "Events published, top companies", published);
    company.register("delivered", "Events queued to subscribers, top companies", delivered);
    company.register("resets", "Reset events sent, top companies", resets);
    company.register(
        "slow_consumer_drops",
        "Subscribers dropped for falling behind, top companies",
        drops,
    );
}
