//! Events sequenced outside this process (the Redis backend): fan-out and subscriptions
//! without local history. The caller owns ordering and gap-freedom: it delivers each
//! company's events in ID order and attaches a subscriber only between deliveries, with
//! the replay that covers everything delivered before (see `backend::redis::reader`).

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::event::{reset_frame_at, Event, ResetReason};
use super::limits::{LimitError, Slot};
use super::stats::Counter;
use super::subscriber::{Push, Subscriber};
use super::{register_channels, Hold, Hub, Opened, Subscription};

impl Hub {
    /// Takes a connection slot (per company and for the host) without subscribing, for a
    /// backend that must check more before it subscribes (a cluster-wide limit).
    pub(crate) fn acquire_slot(&self, company: &str) -> Result<Slot, LimitError> {
        self.inner.limits.acquire(company)
    }

    /// Fans out events that already carry their IDs, in the order given, to this host's
    /// subscribers of their channels. Keeps no history. Returns the frames queued.
    pub(crate) fn deliver(&self, company: &str, events: &[Arc<Event>]) -> u64 {
        let Some(company_arc) = self.inner.companies.lock().get(company).cloned() else {
            return 0;
        };
        let (mut queued, mut dropped) = (0u64, 0u64);
        {
            let state = company_arc.state.lock();
            for event in events {
                let Some(ch) = state.channels.get(&event.channel) else {
                    continue;
                };
                for (_, sub) in ch.subscribers.iter() {
                    let pushed = sub.push_event(event.order, event.frame.clone(), || {
                        reset_frame_at(&event.id, ResetReason::SlowConsumer)
                    });
                    dropped += u64::from(pushed == Push::Overflowed);
                    queued += u64::from(pushed == Push::Queued);
                }
            }
        }
        company_arc.notify.notify_waiters();
        self.count(&company_arc, Counter::Delivered, queued);
        if dropped > 0 {
            self.count(&company_arc, Counter::SlowConsumerDrops, dropped);
            self.count(&company_arc, Counter::Reset(ResetReason::SlowConsumer), dropped);
            tracing::warn!(company, dropped, "slow consumers disconnected");
        }
        queued
    }

    /// Registers a subscriber whose replay (or `reset`) the caller computed: `initial` is
    /// sent first, then every event passed to [`Hub::deliver`] after this call whose
    /// order is above `through` (what `initial` covers).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attach(
        &self,
        company: &str,
        channels: &[String],
        initial: Vec<Bytes>,
        replayed: usize,
        head_id: String,
        through: u128,
        deadline: Option<Instant>,
        slot: Option<Slot>,
        hold: Option<Hold>,
        owner: super::admin::Owner,
    ) -> Subscription {
        let subscriber = Arc::new(Subscriber::new(self.inner.settings.queue_capacity));
        subscriber.set_through(through);
        let company_arc = self.company(company);
        let (registry_key, number) = self.register(&subscriber, deadline, &company_arc, owner);
        let keys = register_channels(&mut company_arc.state.lock(), channels, &subscriber);
        self.count(&company_arc, Counter::Delivered, replayed as u64);
        if replayed > 0 {
            self.count(&company_arc, Counter::Resumed, 1);
        }
        let opened = Opened {
            company: company_arc,
            subscriber,
            keys,
            registry_key,
            number,
        };
        self.finish(opened, initial, replayed, head_id, slot, hold)
    }

    /// Ends every stream of `company` after `last`, a `reset` for `reason` (its history
    /// is gone).
    pub(crate) fn close_company(&self, company: &str, last: &Bytes, reason: ResetReason) -> usize {
        let Some(company_arc) = self.inner.companies.lock().get(company).cloned() else {
            return 0;
        };
        let mut closed = 0;
        for ch in company_arc.state.lock().channels.values() {
            for (_, sub) in ch.subscribers.iter() {
                if !sub.is_closing() {
                    sub.close(last.clone());
                    closed += 1;
                }
            }
        }
        self.count(&company_arc, Counter::Reset(reason), closed as u64);
        closed
    }

    /// This host's open streams per company (the truth a cluster-wide count is synced to).
    pub(crate) fn connections_by_company(&self) -> std::collections::HashMap<String, u32> {
        self.inner.limits.by_key()
    }

    /// Counts a `reset` a backend sent to a stream of `company` (too old, restarted,
    /// unknown ID).
    pub(crate) fn count_reset(&self, company: &str, reason: ResetReason) {
        self.count(&self.company(company), Counter::Reset(reason), 1);
    }

    /// Counts events of `company` a backend stored.
    pub(crate) fn count_published(&self, company: &str, n: usize) {
        self.count(&self.company(company), Counter::Published, n as u64);
    }

    /// Counts a poll of `company` (any backend: the broker calls it).
    pub(crate) fn count_poll(&self, company: &str) {
        self.count(&self.company(company), Counter::PollRequests, 1);
    }
}
