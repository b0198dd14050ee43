//! Hub-wide housekeeping: heartbeats, shutdown, expiry and idle sweeps, statistics.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::company::Company;
use super::event::{reset_frame, ResetReason};
use super::stats::{Counters, StatsSnapshot};
use super::subscriber::Push;
use super::{now_ms, Hub};

impl Hub {
    /// Queues `frame` for every subscriber (heartbeats).
    pub(crate) fn broadcast(&self, frame: &Bytes) {
        let epoch = &self.inner.epoch;
        let head = self.inner.seq.load(Ordering::SeqCst);
        let mut dropped = 0u64;
        for (_, r) in self.inner.registry.lock().iter() {
            let pushed = r
                .subscriber
                .push(frame.clone(), || reset_frame(epoch, head, ResetReason::SlowConsumer));
            dropped += u64::from(pushed == Push::Overflowed);
        }
        if dropped > 0 {
            Counters::add(&self.inner.counters.slow_consumer_drops, dropped);
            Counters::add(&self.inner.counters.resets, dropped);
        }
    }

    /// Ends every stream after `last` (shutdown: a short `retry:` so clients reconnect).
    pub(crate) fn close_all(&self, last: &Bytes) {
        for (_, r) in self.inner.registry.lock().iter() {
            r.subscriber.close(last.clone());
        }
    }

    /// Housekeeping, run about once a second: ends streams past their deadline with
    /// `on_expiry`, drops expired history and idle channels and companies.
    pub(crate) fn sweep(&self, on_expiry: &Bytes) {
        let now = Instant::now();
        for (_, r) in self.inner.registry.lock().iter() {
            if r.deadline.is_some_and(|d| d <= now) {
                r.subscriber.close(on_expiry.clone());
            }
        }
        let companies: Vec<(String, Arc<Company>)> = self
            .inner
            .companies
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let ms = now_ms();
        let mut idle = Vec::new();
        for (name, company) in companies {
            let mut state = company.state.lock();
            state.evict_expired(self.inner.settings.history_max_age, ms);
            if state.sweep(now, self.inner.settings.idle_timeout) {
                idle.push(name);
            }
        }
        if !idle.is_empty() {
            let mut map = self.inner.companies.lock();
            for name in idle {
                // Re-check under the map lock: a subscriber may have arrived meanwhile.
                let still_idle = map.get(&name).is_some_and(|c| {
                    Arc::strong_count(c) == 1 && c.state.lock().sweep(now, self.inner.settings.idle_timeout)
                });
                if still_idle {
                    map.remove(&name);
                }
            }
        }
    }

    /// The numbers behind `GET /sse/stats`.
    pub fn stats(&self) -> StatsSnapshot {
        let mut by_channel: BTreeMap<String, u64> = BTreeMap::new();
        let mut history = 0u64;
        let mut channels = 0u64;
        let companies: Vec<Arc<Company>> = self.inner.companies.lock().values().cloned().collect();
        for company in companies {
            let state = company.state.lock();
            for (name, ch) in &state.channels {
                channels += 1;
                history += ch.history.len() as u64;
                if !ch.subscribers.is_empty() {
                    *by_channel.entry(name.clone()).or_default() += ch.subscribers.len() as u64;
                }
            }
        }
        StatsSnapshot {
            total_connections: u64::from(self.inner.limits.total()),
            connections_by_company: self
                .inner
                .limits
                .by_company()
                .into_iter()
                .map(|(k, v)| (k, u64::from(v)))
                .collect(),
            connections_by_channel: by_channel,
            history_size: history,
            channels,
            counters: (&self.inner.counters).into(),
        }
    }
}
