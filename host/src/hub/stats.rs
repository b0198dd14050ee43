//! Hub counters. Monotonic totals are atomics bumped on the hot path; gauges (connections,
//! history) are computed when asked, from the structures that own them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::event::ResetReason;

/// Monotonic counters since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events accepted by publish.
    pub published: AtomicU64,
    /// Events written to stream bodies.
    pub delivered: AtomicU64,
    /// Streams opened.
    pub streams_opened: AtomicU64,
    /// Streams that resumed from a Last-Event-ID without loss.
    pub resumed: AtomicU64,
    /// `reset` events sent (resume gaps and slow consumers).
    pub resets: AtomicU64,
    /// The same by reason, in [`ResetReason::ALL`]'s order.
    pub resets_by_reason: [AtomicU64; ResetReason::ALL.len()],
    /// Subscribers disconnected for falling behind.
    pub slow_consumer_drops: AtomicU64,
    /// Poll requests answered.
    pub poll_requests: AtomicU64,
    /// Streams and waiting polls refused at a connection limit (by this host).
    pub limit_refusals: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Published,
    Delivered,
    StreamsOpened,
    Resumed,
    /// A `reset` sent for this reason (also counted in the total).
    Reset(ResetReason),
    SlowConsumerDrops,
    PollRequests,
    LimitRefusals,
}

impl Counters {
    /// Adds `n` to `which`.
    pub(crate) fn bump(&self, which: Counter, n: u64) {
        if n == 0 {
            return;
        }
        let counter = match which {
            Counter::Published => &self.published,
            Counter::Delivered => &self.delivered,
            Counter::StreamsOpened => &self.streams_opened,
            Counter::Resumed => &self.resumed,
            Counter::Reset(reason) => {
                self.resets_by_reason[reason.index()].fetch_add(n, Relaxed);
                &self.resets
            }
            Counter::SlowConsumerDrops => &self.slow_consumer_drops,
            Counter::PollRequests => &self.poll_requests,
            Counter::LimitRefusals => &self.limit_refusals,
        };
        counter.fetch_add(n, Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// What `GET /sse/stats` returns (the seed's `getStats()` plus counters).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Open streams.
    pub total_connections: u64,
    /// Open streams per company.
    pub connections_by_company: BTreeMap<String, u64>,
    /// Open stream subscriptions per channel name (a multi-channel stream counts once per channel).
    pub connections_by_channel: BTreeMap<String, u64>,
    /// Events retained for resume, over all channels.
    pub history_size: u64,
    /// Channels alive in memory.
    pub channels: u64,
    /// Monotonic counters.
    pub counters: CountersSnapshot,
}

/// Counter values at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CountersSnapshot {
    /// Events accepted by publish.
    pub published: u64,
    /// Events written to stream bodies.
    pub delivered: u64,
    /// Streams opened (SSE adoption).
    pub streams_opened: u64,
    /// Streams resumed without loss.
    pub resumed: u64,
    /// `reset` events sent.
    pub resets: u64,
    /// The same by reason (`too_old`, `restarted`, `unknown_id`, `slow_consumer`).
    pub resets_by_reason: BTreeMap<&'static str, u64>,
    /// Slow consumers disconnected.
    pub slow_consumer_drops: u64,
    /// Poll requests (polling adoption).
    pub poll_requests: u64,
    /// Streams and waiting polls refused at a connection limit.
    pub limit_refusals: u64,
}

impl From<&Counters> for CountersSnapshot {
    fn from(c: &Counters) -> Self {
        Self {
            published: Counters::get(&c.published),
            delivered: Counters::get(&c.delivered),
            streams_opened: Counters::get(&c.streams_opened),
            resumed: Counters::get(&c.resumed),
            resets: Counters::get(&c.resets),
            resets_by_reason: ResetReason::ALL
                .iter()
                .map(|r| (r.as_str(), Counters::get(&c.resets_by_reason[r.index()])))
                .collect(),
            slow_consumer_drops: Counters::get(&c.slow_consumer_drops),
            poll_requests: Counters::get(&c.poll_requests),
            limit_refusals: Counters::get(&c.limit_refusals),
        }
    }
}
