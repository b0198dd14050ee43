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
    pub(super) adopted_at: u64,
    pub(super) channels: HashMap<String, usize>,
    /// The newest event this host delivered for the company (by a read or in a replay):
    /// its stream key and ID. After a reconnect it must still be there: a failover can
    /// promote a replica that never had it (it was never acknowledged), and a client that
    /// saw it must get `reset`, even when the new master's history has grown past it.
    pub(super) last: Option<(String, StreamId)>,
}

impl Followed {
    /// Records a delivered event if it is the newest.
    pub(super) fn delivered(&mut self, key: String, id: StreamId) {
        if self.last.as_ref().is_none_or(|(_, last)| *last < id) {
            self.last = Some((key, id));
        }
    }
}
