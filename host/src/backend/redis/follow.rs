//! What the reader is asked (adopt a subscriber, release one) and what it keeps per
//! followed company.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::keys::StreamId;
use super::lease::RemoteSlot;
use crate::hub::limits::Slot;
use crate::hub::Subscription;

/// What requests ask of the reader.
pub(crate) enum Request {
    /// Attach a subscriber whose replay is computed.
    Adopt(Box<Adoption>, oneshot::Sender<Subscription>),
    /// A subscriber ended: stop following its channels if nobody else needs them.
    Release { company: String, channels: Vec<String> },
}

/// A subscriber to attach: its replay covers everything up to `from`.
pub(crate) struct Adoption {
    pub(crate) company: String,
    pub(crate) channels: Vec<String>,
    pub(crate) from: StreamId,
    pub(crate) initial: Vec<Bytes>,
    pub(crate) replayed: usize,
    pub(crate) deadline: Option<Instant>,
    pub(crate) slot: Option<Slot>,
    pub(crate) remote: Option<RemoteSlot>,
    pub(crate) owner: crate::hub::admin::Owner,
    /// The newest event of the replay: its stream key and ID ([`Followed::last`]).
    pub(crate) last: Option<(String, StreamId)>,
}

/// Kept alive by the subscription: when it ends, the channels are released (and the
/// cluster-wide slot given back).
pub(super) struct Follow {
    pub(super) company: String,
    pub(super) channels: Vec<String>,
    pub(super) reader: mpsc::UnboundedSender<Request>,
    /// Held, not read: dropping it gives the cluster-wide slot back.
    pub(super) _remote: Option<RemoteSlot>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.reader.send(Request::Release {
            company: std::mem::take(&mut self.company),
            channels: std::mem::take(&mut self.channels),
        });
    }
}

/// A followed company: its cut, when it was last adopted into, and channel reference
/// counts.
pub(super) struct Followed {
    pub(super) cut: StreamId,
    /// The highest last ID of the company seen (by reads, and adoptions' replay heads):
    /// the last ID going below it means the history went back.
    pub(super) last_seen: StreamId,
    pub(super) adopted_at: u64,
    pub(super) channels: HashMap<String, usize>,
    /// The newest event this host delivered per followed stream (by a read or in a
    /// replay). After a reconnect the newest of them must still be there: a failover can
    /// promote a replica that never had it (it was never acknowledged), and a client that
    /// saw it must get `reset`, even when the new master's history has grown past it.
    /// (Writes of a company replicate in ID order, so the newest one standing vouches for
    /// all before it.)
    pub(super) delivered: HashMap<String, StreamId>,
    /// `delivered` as it was when the connection was lost or a read failed: what the next
    /// check must find. Adoptions meanwhile, with replays from a new master, update
    /// `delivered` and must not hide an event only the old master had.
    pub(super) unverified: Option<HashMap<String, StreamId>>,
}

impl Followed {
    /// A followed company from its first adoption.
    pub(super) fn new(cut: StreamId) -> Self {
        Self {
            cut,
            last_seen: cut,
            adopted_at: 0,
            channels: HashMap::new(),
            delivered: HashMap::new(),
            unverified: None,
        }
    }

    /// Records an event delivered on stream `key`.
    pub(super) fn record(&mut self, key: String, id: StreamId) {
        let newest = self.delivered.entry(key).or_default();
        *newest = (*newest).max(id);
    }

    /// Keeps what was delivered until a check finds it (the connection was lost, or a
    /// read failed); an earlier freeze not yet checked stays.
    pub(super) fn freeze(&mut self) {
        if self.unverified.is_none() {
            self.unverified = Some(self.delivered.clone());
        }
    }

    /// The event a check must find: the newest delivered (as frozen) on a stream in
    /// `followed` (one no longer followed may have been trimmed past it).
    pub(super) fn to_verify(&self, followed: &[String]) -> Option<(String, StreamId)> {
        self.unverified
            .as_ref()
            .unwrap_or(&self.delivered)
            .iter()
            .filter(|(key, _)| followed.contains(key))
            .max_by_key(|(_, id)| **id)
            .map(|(key, id)| (key.clone(), *id))
    }

    /// After a check: passed (nothing more to find), or reset (its subscribers are gone
    /// and nothing they saw is owed to anyone).
    pub(super) fn checked(&mut self, reset: bool) {
        self.unverified = None;
        if reset {
            self.delivered.clear();
        }
    }
}
