//! One company's channels: history rings, subscriber lists and the resume rules. Every
//! method runs under the company's lock, which is what makes "replay, then register for
//! live events" gap-free and keeps IDs ordered across the company's channels.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use super::event::{Event, ResetReason};
use super::stats::Counters;
use super::subscriber::Subscriber;

/// A company: its lock-protected state, a notifier for long-polls, and its own counters
/// (what its admins see; they start again when an idle company is dropped).
#[derive(Debug)]
pub(crate) struct Company {
    pub(crate) state: parking_lot::Mutex<CompanyState>,
    pub(crate) notify: tokio::sync::Notify,
    pub(crate) counters: Counters,
}

impl Company {
    pub(crate) fn new(floor: u64, now: Instant) -> Self {
        Self {
            state: parking_lot::Mutex::new(CompanyState {
                floor,
                channels: HashMap::new(),
                tombstones: HashMap::new(),
                last_active: now,
            }),
            notify: tokio::sync::Notify::new(),
            counters: Counters::default(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct CompanyState {
    /// The hub sequence when this company was (re)created: nothing is known before it.
    floor: u64,
    pub(crate) channels: HashMap<String, Channel>,
    /// For channels dropped while idle: the last sequence they ever held.
    tombstones: HashMap<String, u64>,
    last_active: Instant,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) history: VecDeque<Arc<Event>>,
    /// Highest sequence no longer in `history` (evicted, or before the channel existed).
    evicted_max: u64,
    pub(crate) subscribers: Slab<Arc<Subscriber>>,
    last_active: Instant,
}

impl CompanyState {
    fn floor_of(&self, name: &str) -> u64 {
        self.floor.max(self.tombstones.get(name).copied().unwrap_or(0))
    }

    /// The channel, created on first use.
    pub(crate) fn channel(&mut self, name: &str, now: Instant) -> &mut Channel {
        self.last_active = now;
        if !self.channels.contains_key(name) {
            let floor = self.floor_of(name);
            self.tombstones.remove(name);
            let ch = Channel {
                history: VecDeque::new(),
                evicted_max: floor,
                subscribers: Slab::new(),
                last_active: now,
            };
            self.channels.insert(name.to_owned(), ch);
        }
        self.channels.get_mut(name).expect("inserted above")
    }

    /// Whether resuming after `cursor` on `channels` is exact; otherwise why not.
    pub(crate) fn check_cursor(&self, channels: &[String], cursor: u64) -> Result<(), ResetReason> {
        for name in channels {
            let evicted = self
                .channels
                .get(name)
                .map_or_else(|| self.floor_of(name), |c| c.evicted_max);
            if evicted > cursor {
                return Err(ResetReason::TooOld);
            }
        }
        Ok(())
    }

    /// Retained events after `cursor` on `channels`, in sequence order, at most `limit`.
    pub(crate) fn events_after(&self, channels: &[String], cursor: u64, limit: usize) -> Vec<Arc<Event>> {
        let mut out: Vec<Arc<Event>> = channels
            .iter()
            .filter_map(|n| self.channels.get(n))
            .flat_map(|c| {
                let start = c.history.partition_point(|e| e.seq <= cursor);
                c.history.range(start..).cloned()
            })
            .collect();
        if channels.len() > 1 {
            out.sort_unstable_by_key(|e| e.seq);
        }
        out.truncate(limit);
        out
    }

    /// Drops events older than `max_age` from every channel.
    pub(crate) fn evict_expired(&mut self, max_age: Option<Duration>, now_ms: u64) {
        let Some(max_age) = max_age else { return };
        let cutoff = now_ms.saturating_sub(max_age.as_millis() as u64);
        for ch in self.channels.values_mut() {
            while ch.history.front().is_some_and(|e| e.timestamp_ms < cutoff) {
                ch.evict_front();
            }
        }
    }

    /// Drops channels that have no subscribers and saw nothing for `idle`; returns true
    /// when the whole company is empty and idle (the hub may then drop it).
    pub(crate) fn sweep(&mut self, now: Instant, idle: Duration) -> bool {
        let mut dropped = Vec::new();
        self.channels.retain(|name, ch| {
            let keep = !ch.subscribers.is_empty() || now.duration_since(ch.last_active) < idle;
            if !keep {
                let last = ch.history.back().map_or(ch.evicted_max, |e| e.seq);
                dropped.push((name.clone(), last));
            }
            keep
        });
        self.tombstones.extend(dropped);
        self.channels.is_empty() && now.duration_since(self.last_active) >= idle
    }
}

impl Channel {
    /// Appends to history, evicting the oldest event beyond `size`.
    pub(crate) fn record(&mut self, event: Arc<Event>, size: usize, now: Instant) {
        self.last_active = now;
        if size == 0 {
            self.evicted_max = event.seq;
            return;
        }
        while self.history.len() >= size {
            self.evict_front();
        }
        self.history.push_back(event);
    }

    /// Removes a subscriber by its key.
    pub(crate) fn unsubscribe(&mut self, key: usize) {
        self.subscribers.try_remove(key);
        if self.subscribers.is_empty() && self.subscribers.capacity() > 64 {
            // A slab iterates over its vacant slots too: after a storm of thousands, every
            // publish would walk them. No key is live now.
            self.subscribers = Slab::new();
        }
    }

    fn evict_front(&mut self) {
        if let Some(e) = self.history.pop_front() {
            self.evicted_max = self.evicted_max.max(e.seq);
        }
    }
}
