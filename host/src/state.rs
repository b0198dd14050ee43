//! The state every request shares. Its own module so that the application (`app`) and
//! the transport (`http`) both depend on it, and neither on the other's internals.

use bytes::Bytes;

use crate::broker::Broker;
use crate::config::HostConfig;
use crate::dev::DevSecrets;
use crate::edge::WasmEdge;
use crate::hub::sse;
use crate::metrics::HttpMetrics;
use crate::ratelimit::RateLimiter;

/// Retry hint sent to streams closed by shutdown: reconnect soon, to another instance.
const DRAIN_RETRY_MS: u64 = 500;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: HostConfig,
    /// The one way into the domain: publish, subscribe, poll, stats.
    pub broker: Broker,
    /// HTTP-level metrics.
    pub metrics: HttpMetrics,
    /// Publish rate limits.
    pub rate: RateLimiter,
    /// The embedded edge's filter chain (edge mode `wasm`).
    pub edge: Option<WasmEdge>,
    /// Dev mode's secrets: enables `/dev/token` for the dashboard.
    pub dev: Option<DevSecrets>,
    /// Verified tokens, for the native edge (`jwt.cache_size` of the policy).
    pub tokens: parking_lot::Mutex<sse_policy::cache::TokenCache>,
    /// HTTP/2 connections per peer address, each held for the connection's life
    /// (`http.max_connections_per_peer`). Here rather than in each connection's task: a
    /// plain stream's task must not grow for it.
    pub(crate) h2_peers: crate::hub::limits::ConnectionLimits<std::net::IpAddr>,
}

impl AppState {
    /// State for a host that is not draining.
    pub(crate) fn new(config: HostConfig, broker: Broker, edge: Option<WasmEdge>, dev: Option<DevSecrets>) -> Self {
        let (rate, burst) = (config.publish.rate_per_sec, config.publish.burst);
        let tiers = config.policy.limits.tiered_companies().map(|(company, tier)| {
            let own = (
                tier.publish_rate_per_sec.unwrap_or(rate),
                tier.publish_burst.unwrap_or(burst),
            );
            (company.to_owned(), own)
        });
        let rate = RateLimiter::with_overrides(rate, burst, tiers.collect());
        let tokens = parking_lot::Mutex::new(sse_policy::cache::TokenCache::new(config.policy.jwt.cache_size));
        let per_peer = u32::try_from(config.http.max_connections_per_peer).unwrap_or(u32::MAX);
        let h2_peers = crate::hub::limits::ConnectionLimits::new(per_peer, u32::MAX);
        Self {
            config,
            broker,
            metrics: HttpMetrics::default(),
            rate,
            edge,
            dev,
            tokens,
            h2_peers,
        }
    }

    /// True once shutdown began: no new streams, readyz is false.
    pub fn is_draining(&self) -> bool {
        self.broker.is_draining()
    }

    /// Starts draining: refuses new streams and ends the open ones with a short `retry:`.
    pub fn begin_drain(&self) {
        if self.broker.begin_drain(&closing_frame(DRAIN_RETRY_MS, "shutdown")) {
            tracing::info!("draining: closing streams");
        }
    }
}

/// The last frame of a stream the server ends: a `retry:` hint and a `closing` event
/// that says why, so the client knows to reconnect (with a fresh token if it expired).
pub(crate) fn closing_frame(retry_ms: u64, reason: &str) -> Bytes {
    let data = serde_json::json!({ "reason": reason }).to_string();
    let mut frame = sse::retry_frame(retry_ms).to_vec();
    frame.extend_from_slice(&sse::event_frame(None, Some("closing"), &data));
    Bytes::from(frame)
}
