//! The `[stream]` and `[history]` tables: how streams behave and what the hub keeps.

use std::time::Duration;

use serde::Deserialize;

use super::Problems;
use crate::hub::{HubSettings, TenantSettings};

/// Stream behaviour outside the hub: what the HTTP layer and the tick loop send.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// Send heartbeats as `event: heartbeat` instead of a comment (visible to EventSource).
    pub heartbeat_event: bool,
    /// The `retry:` sent at the start of every stream, in ms.
    pub retry_ms: u64,
    /// Serve HTTP/1.1 stream requests on the fast path (`http/fast.rs`: less memory per
    /// idle stream) instead of hyper. Off is the fallback should the fast path ever
    /// misbehave; the tests run the streaming suite both ways.
    pub http1_fast_path: bool,
}

/// The `[stream]` defaults, defined once here (the hub's in [`HubSettings`]).
impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            heartbeat_event: false,
            retry_ms: 3000,
            http1_fast_path: true,
        }
    }
}

/// `[stream]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamFile {
    /// Seconds between heartbeats (the seed's 30).
    pub heartbeat_secs: u64,
    /// Heartbeat as a named event rather than a comment.
    pub heartbeat_event: bool,
    /// `retry:` hint in ms.
    pub retry_ms: u64,
    /// Longest stream lifetime in seconds.
    pub max_lifetime_secs: u64,
    /// Pending frames per subscriber before it counts as slow.
    pub queue_capacity: usize,
    /// Streams on this host.
    pub max_connections: u32,
    /// Serve HTTP/1.1 streams on the fast path.
    pub http1_fast_path: bool,
}

impl Default for StreamFile {
    fn default() -> Self {
        let (s, h) = (StreamSettings::default(), HubSettings::default());
        Self {
            heartbeat_secs: s.heartbeat.as_secs(),
            heartbeat_event: s.heartbeat_event,
            retry_ms: s.retry_ms,
            max_lifetime_secs: h.max_lifetime.as_secs(),
            queue_capacity: h.queue_capacity,
            max_connections: h.max_connections,
            http1_fast_path: s.http1_fast_path,
        }
    }
}

impl StreamFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(
            (1..=3600).contains(&self.heartbeat_secs),
            "stream.heartbeat_secs: must be 1-3600",
        );
        p.check(
            (100..=600_000).contains(&self.retry_ms),
            "stream.retry_ms: must be 100-600000",
        );
        p.check(
            self.max_lifetime_secs >= 10,
            "stream.max_lifetime_secs: must be at least 10",
        );
        p.check(
            (1..=65_536).contains(&self.queue_capacity),
            "stream.queue_capacity: must be 1-65536",
        );
        p.check(self.max_connections >= 1, "stream.max_connections: must be at least 1");
    }

    pub(super) fn settings(&self) -> StreamSettings {
        StreamSettings {
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            heartbeat_event: self.heartbeat_event,
            retry_ms: self.retry_ms,
            http1_fast_path: self.http1_fast_path,
        }
    }
}

/// `[history]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryFile {
    /// Events kept per channel.
    pub size: usize,
    /// Maximum event age in seconds (0: no age limit).
    pub max_age_secs: u64,
    /// Seconds before an unused channel is dropped.
    pub idle_channel_secs: u64,
}

impl Default for HistoryFile {
    fn default() -> Self {
        let h = HubSettings::default();
        Self {
            size: h.history_size,
            max_age_secs: h.history_max_age.map_or(0, |a| a.as_secs()),
            idle_channel_secs: h.idle_timeout.as_secs(),
        }
    }
}

impl HistoryFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(self.size <= 100_000, "history.size: must be at most 100000");
        p.check(
            self.max_age_secs <= sse_policy::config::MAX_HISTORY_AGE_SECS,
            "history.max_age_secs: must be at most 315360000 (ten years)",
        );
        p.check(
            self.idle_channel_secs >= 1,
            "history.idle_channel_secs: must be at least 1",
        );
    }
}

/// The hub's settings from their sources: `[stream]`, `[history]`, `[publish]` (the
/// event size and idempotency keys), and the per-company connection limit in the
/// policy, which the filter enforces too.
pub(super) fn hub_settings(
    stream: &StreamFile,
    history: &HistoryFile,
    publish: &super::PublishFile,
    limits: &sse_policy::config::Limits,
) -> HubSettings {
    HubSettings {
        tenants: std::sync::Arc::new(
            limits
                .tiered_companies()
                .map(|(company, tier)| {
                    let age = tier.history_max_age_secs.map_or(history.max_age_secs, |a| a);
                    let settings = TenantSettings {
                        max_connections: limits.connections_for(company),
                        history_size: tier.history_size.unwrap_or(history.size),
                        history_max_age: (age > 0).then(|| Duration::from_secs(age)),
                    };
                    (company.to_owned(), settings)
                })
                .collect(),
        ),
        idempotency_ttl: Duration::from_secs(publish.idempotency_ttl_secs),
        idempotency_keys_per_company: publish.idempotency_keys_per_company,
        history_size: history.size,
        history_max_age: (history.max_age_secs > 0).then(|| Duration::from_secs(history.max_age_secs)),
        queue_capacity: stream.queue_capacity,
        max_event_bytes: publish.max_event_bytes,
        max_connections_per_company: limits.max_connections_per_company,
        max_connections: stream.max_connections,
        idle_timeout: Duration::from_secs(history.idle_channel_secs),
        max_lifetime: Duration::from_secs(stream.max_lifetime_secs),
    }
}
