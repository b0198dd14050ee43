//! What the Redis backend reports in `/sse/stats` (and why it logs).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::json;

use super::Shared;

/// Health and counters, updated by requests and the background tasks.
#[derive(Debug, Default)]
pub(crate) struct Status {
    reader_connected: AtomicBool,
    connects: AtomicU64,
    publish_failures: AtomicU64,
    data_losses: AtomicU64,
    followed_streams: AtomicUsize,
    followed_companies: AtomicUsize,
    /// How old the newest entry of the reader's last read was when read, in ms.
    read_lag_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Status {
    pub(crate) fn error(&self, e: &redis::RedisError) {
        self.error_message(&e.to_string());
    }

    /// Records an error reply of one command (a pipeline's other commands may have
    /// succeeded).
    pub(crate) fn error_message(&self, e: &str) {
        *self.last_error.lock() = Some(e.to_owned());
    }

    pub(crate) fn publish_failed(&self) {
        self.publish_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reader_up(&self, up: bool) {
        let was = self.reader_connected.swap(up, Ordering::Relaxed);
        if up && !was {
            self.connects.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn data_lost(&self) {
        self.data_losses.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how far behind the publishes the reader's latest read was.
    pub(crate) fn read_lag(&self, ms: u64) {
        self.read_lag_ms.store(ms, Ordering::Relaxed);
    }

    /// The latest read's lag.
    pub(crate) fn lag(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.read_lag_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn following(&self, companies: usize, streams: usize) {
        self.followed_companies.store(companies, Ordering::Relaxed);
        self.followed_streams.store(streams, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, shared: &Shared) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "kind": "redis",
            "redis": shared.addr,
            "node": shared.node,
            "connected": self.reader_connected.load(Ordering::Relaxed),
            // The first connect counts too: reconnects = connects - 1.
            "connects": n(&self.connects),
            "publishFailures": n(&self.publish_failures),
            "dataLosses": n(&self.data_losses),
            "followedCompanies": self.followed_companies.load(Ordering::Relaxed),
            "followedStreams": self.followed_streams.load(Ordering::Relaxed),
            "readerLagMs": self.read_lag_ms.load(Ordering::Relaxed),
            "lastError": *self.last_error.lock(),
        })
    }
}
