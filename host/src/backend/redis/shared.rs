//! What the backend's requests and background tasks share: the hub, the settings, the
//! connections and queues, and the few rules about which of them to use.

use tokio::sync::mpsc;

use super::conn::{Conn, Target};
use super::keys::Keys;
use super::scripts::Scripts;
use super::status::Status;
use super::{lease, reader, RedisSettings};
use crate::backend::BackendError;
use crate::hub::Hub;

/// State shared by requests and the background tasks.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) hub: Hub,
    pub(super) settings: RedisSettings,
    /// `host:port` of Redis, for messages (the URL may hold a password).
    pub(super) addr: String,
    pub(super) keys: Keys,
    pub(super) scripts: Scripts,
    pub(super) target: Target,
    pub(super) conn: Conn,
    /// Connections for publishes that `WAIT` for replicas (empty without
    /// `min_replicas_ack`), taken in turn.
    pub(super) waiters: Vec<Conn>,
    pub(super) next_waiter: std::sync::atomic::AtomicUsize,
    pub(super) node: String,
    pub(super) status: Status,
    /// The readers' queues; a company's subscribers all go to one ([`Shared::reader_for`]).
    pub(super) readers: Vec<mpsc::UnboundedSender<reader::Request>>,
    /// Slot acquires and releases, for the lease task (`lease.rs`).
    pub(super) ops: mpsc::UnboundedSender<lease::Op>,
}

/// Connections kept for publishes that wait for replicas: each WAIT holds up its
/// connection, so several let publishes of different companies wait at once.
pub(super) const WAITERS: usize = 4;

impl Shared {
    /// The reader that follows `company` (a stable hash: every subscriber of a company
    /// goes to the same reader, whose cut orders the company's events).
    pub(super) fn reader_for(&self, company: &str) -> &mpsc::UnboundedSender<reader::Request> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        company.hash(&mut h);
        &self.readers[(h.finish() % self.readers.len() as u64) as usize]
    }

    /// The connection a publish runs on: the shared one, or with `min_replicas_ack` one
    /// of the waiters (its WAIT would hold up everything else on the shared one).
    pub(super) fn publish_conn(&self) -> Conn {
        if self.waiters.is_empty() {
            return self.conn.clone();
        }
        let i = self.next_waiter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.waiters[i % self.waiters.len()].clone()
    }

    /// The channel publishes are announced on. Always announced, whatever this host's
    /// reader: hosts sharing a Redis may read either way, and a PUBLISH nobody listens to
    /// costs Redis next to nothing.
    pub(super) fn notify_channel(&self) -> String {
        self.keys.notify()
    }

    /// Whether readers wait on announcements (always on a cluster, where a blocking XREAD
    /// cannot span slots; on one Redis with `redis.reader = "announced"`).
    pub(super) fn announced(&self) -> bool {
        self.target.is_cluster() || self.settings.announced
    }

    pub(super) fn unavailable(&self, e: &redis::RedisError) -> BackendError {
        self.status.error(e);
        BackendError::Unavailable(format!("Redis at {}: {e}", self.addr))
    }
}
