//! Hub-wide housekeeping: heartbeats, shutdown, expiry and idle sweeps, statistics.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::company::Company;
use super::event::{reset_frame, ResetReason};
use super::stats::{Counter, CountersSnapshot, StatsSnapshot};
use super::subscriber::Push;
use super::{now_ms, Hub};

impl Hub {
    /// Queues `frame` for every subscriber (heartbeats).
    pub(crate) fn broadcast(&self, frame: &Bytes) {
        let epoch = &self.inner.epoch;
        let head = self.inner.seq.load(Ordering::SeqCst);
        for (_, r) in self.inner.registry.lock().iter() {
            let pushed = r
                .subscriber
                .push(frame.clone(), || reset_frame(epoch, head, ResetReason::SlowConsumer));
            if pushed == Push::Overflowed {
                self.count(&r.company, Counter::SlowConsumerDrops, 1);
                self.count(&r.company, Counter::Reset(ResetReason::SlowConsumer), 1);
            }
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
        self.inner.idempotency.prune(now);
        let ms = now_ms();
        let mut idle = Vec::new();
        for (name, company) in companies {
            let mut state = company.state.lock();
            state.evict_expired(self.inner.settings.tenant(&name).history_max_age, ms);
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

    /// The numbers behind `GET /sse/stats` for the whole host (super-admins, metrics).
    pub fn stats(&self) -> StatsSnapshot {
        let companies: Vec<Arc<Company>> = self.inner.companies.lock().values().cloned().collect();
        let mut snapshot = StatsSnapshot {
            total_connections: u64::from(self.inner.limits.total()),
            connections_by_company: self
                .inner
                .limits
                .by_key()
                .into_iter()
                .map(|(k, v)| (k, u64::from(v)))
                .collect(),
            connections_by_channel: BTreeMap::new(),
            history_size: 0,
            channels: 0,
            counters: (&self.inner.counters).into(),
        };
        for company in companies {
            add_channels(&mut snapshot, &company);
        }
        snapshot
    }

    /// The counters of each of `names`, in order, under one lock of the company map and
    /// no company's own lock (what `/metrics` needs of its top companies).
    pub(crate) fn company_counters(&self, names: &[String]) -> Vec<CountersSnapshot> {
        let companies = self.inner.companies.lock();
        names
            .iter()
            .map(|n| companies.get(n).map(|c| (&c.counters).into()).unwrap_or_default())
            .collect()
    }

    /// The same numbers for one company only (its admins): its connections, channels,
    /// history and counters, nothing of any other company.
    pub fn company_stats(&self, name: &str) -> StatsSnapshot {
        let connections = u64::from(self.inner.limits.count(name));
        let company = self.inner.companies.lock().get(name).cloned();
        let mut snapshot = StatsSnapshot {
            total_connections: connections,
            connections_by_company: (connections > 0)
                .then(|| (name.to_owned(), connections))
                .into_iter()
                .collect(),
            connections_by_channel: BTreeMap::new(),
            history_size: 0,
            channels: 0,
            counters: company.as_ref().map(|c| (&c.counters).into()).unwrap_or_default(),
        };
        if let Some(company) = company {
            add_channels(&mut snapshot, &company);
        }
        snapshot
    }
}

/// Adds `company`'s channels, history and subscriptions to `snapshot`.
fn add_channels(snapshot: &mut StatsSnapshot, company: &Company) {
    let state = company.state.lock();
    for (name, ch) in &state.channels {
        snapshot.channels += 1;
        snapshot.history_size += ch.history.len() as u64;
        if !ch.subscribers.is_empty() {
            *snapshot.connections_by_channel.entry(name.clone()).or_default() += ch.subscribers.len() as u64;
        }
    }
}
