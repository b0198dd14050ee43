//! The `[publish]` and `[poll]` tables: what publishers and pollers may send and ask.

use std::time::Duration;

use serde::Deserialize;

use super::Problems;
use crate::hub::HubSettings;

/// Publish behaviour.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Sustained events per second per company.
    pub rate_per_sec: f64,
    /// Burst allowance per company.
    pub burst: f64,
}

/// The `[publish]` defaults, defined once here (the event size is the hub's).
impl Default for PublishSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            rate_per_sec: 1000.0,
            burst: 2000.0,
        }
    }
}

/// Polling behaviour.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Longest long-poll wait.
    pub max_wait: Duration,
    /// Most events one poll returns.
    pub max_limit: usize,
}

/// The `[poll]` defaults, defined once here.
impl Default for PollSettings {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(30),
            max_limit: 100,
        }
    }
}

/// `[publish]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishFile {
    /// Largest event payload in bytes.
    pub max_event_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Sustained events/s per company.
    pub rate_per_sec: f64,
    /// Burst per company.
    pub burst: f64,
    /// Seconds an `Idempotency-Key` is remembered.
    pub idempotency_ttl_secs: u64,
    /// Keys a company may have remembered at once (its oldest goes first).
    pub idempotency_keys_per_company: usize,
}

impl Default for PublishFile {
    fn default() -> Self {
        let p = PublishSettings::default();
        let hub = HubSettings::default();
        Self {
            max_event_bytes: hub.max_event_bytes,
            max_body_bytes: p.max_body_bytes,
            rate_per_sec: p.rate_per_sec,
            burst: p.burst,
            idempotency_ttl_secs: hub.idempotency_ttl.as_secs(),
            idempotency_keys_per_company: hub.idempotency_keys_per_company,
        }
    }
}

impl PublishFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(
            (1..=16 * 1024 * 1024).contains(&self.max_event_bytes),
            "publish.max_event_bytes: must be 1 B-16 MiB",
        );
        p.check(
            self.max_body_bytes >= self.max_event_bytes,
            "publish.max_body_bytes: must be at least max_event_bytes",
        );
        p.check(
            (sse_policy::config::MIN_RATE..=sse_policy::config::MAX_RATE).contains(&self.rate_per_sec)
                && (1.0..=sse_policy::config::MAX_RATE).contains(&self.burst),
            "publish.rate_per_sec must be 0.001-1e9 and publish.burst 1-1e9",
        );
        p.check(
            (1..=7 * 86_400).contains(&self.idempotency_ttl_secs),
            "publish.idempotency_ttl_secs: must be 1-604800 (a week)",
        );
        p.check(
            (1..=1_000_000).contains(&self.idempotency_keys_per_company),
            "publish.idempotency_keys_per_company: must be 1-1000000",
        );
    }

    pub(super) fn settings(&self) -> PublishSettings {
        PublishSettings {
            max_body_bytes: self.max_body_bytes,
            rate_per_sec: self.rate_per_sec,
            burst: self.burst,
        }
    }
}

/// `[poll]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollFile {
    /// Longest `wait` in seconds.
    pub max_wait_secs: u64,
    /// Largest `limit`.
    pub max_limit: usize,
}

impl Default for PollFile {
    fn default() -> Self {
        let p = PollSettings::default();
        Self {
            max_wait_secs: p.max_wait.as_secs(),
            max_limit: p.max_limit,
        }
    }
}

impl PollFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(
            (1..=300).contains(&self.max_wait_secs),
            "poll.max_wait_secs: must be 1-300",
        );
        p.check(
            (1..=10_000).contains(&self.max_limit),
            "poll.max_limit: must be 1-10000",
        );
    }

    pub(super) fn settings(&self) -> PollSettings {
        PollSettings {
            max_wait: Duration::from_secs(self.max_wait_secs),
            max_limit: self.max_limit,
        }
    }
}
