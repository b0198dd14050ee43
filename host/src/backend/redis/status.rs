//! What the Redis backend reports in `/sse/stats` (and why it logs).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::json;

use super::Shared;

/// Health and counters, updated by requests and the background tasks.
#[derive(Debug)]
pub(crate) struct Status {
    /// One per reader (`redis.readers`).
    readers: Vec<ReaderStatus>,
    connects: AtomicU64,
    publish_failures: AtomicU64,
    data_losses: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// One reader's state.
#[derive(Debug, Default)]
struct ReaderStatus {
    connected: AtomicBool,
    followed_streams: AtomicUsize,
    followed_companies: AtomicUsize,
    /// How old the newest entry of its last read was when read, in ms.
    read_lag_ms: AtomicU64,
}

impl Status {
    /// The state of `readers` readers, none connected yet.
    pub(crate) fn new(readers: usize) -> Self {
        Self {
            readers: (0..readers.max(1)).map(|_| ReaderStatus::default()).collect(),
            connects: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            data_losses: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn reader(&self, i: usize) -> &ReaderStatus {
        &self.readers[i % self.readers.len()]
    }

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

    pub(crate) fn reader_up(&self, reader: usize, up: bool) {
        let was = self.reader(reader).connected.swap(up, Ordering::Relaxed);
        if up && !was {
            self.connects.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn data_lost(&self) {
        self.data_losses.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how far behind the publishes a reader's latest read was.
    pub(crate) fn read_lag(&self, reader: usize, ms: u64) {
        self.reader(reader).read_lag_ms.store(ms, Ordering::Relaxed);
    }

    /// The latest reads' lag: the worst reader's.
    pub(crate) fn lag(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max(|r| r.read_lag_ms.load(Ordering::Relaxed)))
    }

    fn max(&self, f: impl Fn(&ReaderStatus) -> u64) -> u64 {
        self.readers.iter().map(f).max().unwrap_or(0)
    }

    fn sum(&self, f: impl Fn(&ReaderStatus) -> usize) -> usize {
        self.readers.iter().map(f).sum()
    }

    pub(crate) fn following(&self, reader: usize, companies: usize, streams: usize) {
        let r = self.reader(reader);
        r.followed_companies.store(companies, Ordering::Relaxed);
        r.followed_streams.store(streams, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, shared: &Shared) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sentinel = match &shared.target {
            super::conn::Target::Sentinel(s) => s.status(),
            _ => serde_json::Value::Null,
        };
        json!({
            "kind": "redis",
            "redis": shared.addr,
            // Behind Sentinel: the master followed now, and how often it changed.
            "sentinel": sentinel,
            "node": shared.node,
            // Every reader: a host with one reader down misses some companies' events.
            "connected": self.readers.iter().all(|r| r.connected.load(Ordering::Relaxed)),
            "readers": self.readers.len(),
            // Every reader's first connect counts too: reconnects = connects - readers.
            "connects": n(&self.connects),
            "publishFailures": n(&self.publish_failures),
            "dataLosses": n(&self.data_losses),
            "followedCompanies": self.sum(|r| r.followed_companies.load(Ordering::Relaxed)),
            "followedStreams": self.sum(|r| r.followed_streams.load(Ordering::Relaxed)),
            "readerLagMs": self.max(|r| r.read_lag_ms.load(Ordering::Relaxed)),
            "lastError": *self.last_error.lock(),
        })
    }
}
