//! The subscription handle: what a stream holds for its lifetime, and the guard that
//! unregisters it everywhere (channels, registry, connection slot) when dropped.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::company::{Company, CompanyState};
use super::limits::Slot;
use super::stats::Counter;
use super::subscriber::Subscriber;
use super::Hub;

/// An open subscription: the queue the body drains, the frames to send first, and the
/// guard that unregisters it and returns its connection slot when dropped.
#[derive(Debug)]
pub struct Subscription {
    /// The queue of live frames.
    pub subscriber: Arc<Subscriber>,
    /// Replayed events or a `reset`, to send before live frames.
    pub initial: Vec<Bytes>,
    /// Events in `initial` that are replays (for the delivered counter).
    pub replayed: usize,
    /// Unique id of this connection.
    pub connection_id: String,
    /// The ID of the latest event at subscribe time.
    pub head_id: String,
    _guard: SubscriptionGuard,
}

#[derive(Debug)]
struct SubscriptionGuard {
    hub: Hub,
    company: Arc<Company>,
    keys: Vec<(String, usize)>,
    registry_key: usize,
    // Dropped before the slot: a cluster-wide release is queued before the local count
    // falls, so a count resync in between can only over-count (fail closed).
    _hold: Option<Hold>,
    _slot: Option<Slot>,
}

/// Something a backend keeps alive for as long as a subscription (for Redis: the
/// cluster-wide connection slot and the channel follow references).
pub struct Hold(pub Box<dyn Send + Sync>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

/// A subscriber registered in the registry and its channels, not yet wrapped.
pub(super) struct Opened {
    pub(super) company: Arc<Company>,
    pub(super) subscriber: Arc<Subscriber>,
    pub(super) keys: Vec<(String, usize)>,
    pub(super) registry_key: usize,
    /// Its connection number (`{epoch}-c{n}`).
    pub(super) number: u64,
}

/// Adds `subscriber` to each channel's list (the caller holds the company lock).
pub(super) fn register_channels(
    state: &mut CompanyState,
    channels: &[String],
    subscriber: &Arc<Subscriber>,
) -> Vec<(String, usize)> {
    let now = Instant::now();
    channels
        .iter()
        .map(|name| {
            (
                name.clone(),
                state.channel(name, now).subscribers.insert(subscriber.clone()),
            )
        })
        .collect()
}

impl Hub {
    /// Builds the subscription handle once the subscriber is registered everywhere.
    pub(super) fn finish(
        &self,
        opened: Opened,
        initial: Vec<Bytes>,
        replayed: usize,
        head_id: String,
        slot: Option<Slot>,
        hold: Option<Hold>,
    ) -> Subscription {
        let n = opened.number;
        self.count(&opened.company, Counter::StreamsOpened, 1);
        Subscription {
            subscriber: opened.subscriber,
            initial,
            replayed,
            connection_id: format!("{}-c{n}", self.inner.epoch),
            head_id,
            _guard: SubscriptionGuard {
                hub: self.clone(),
                company: opened.company,
                keys: opened.keys,
                registry_key: opened.registry_key,
                _hold: hold,
                _slot: slot,
            },
        }
    }
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        {
            let mut state = self.company.state.lock();
            let now = Instant::now();
            for (name, key) in &self.keys {
                if let Some(ch) = state.channels.get_mut(name) {
                    ch.unsubscribe(*key);
                }
                let _ = state.channel(name, now); // marks the channel active: idle timer restarts
            }
        }
        self.hub.inner.registry.lock().try_remove(self.registry_key);
    }
}
