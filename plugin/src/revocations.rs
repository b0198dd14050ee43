//! The VM's copy of the revocation list, refreshed by the root context over an HTTP
//! callout to the host (`edge.revocations`), and checked by every request context.

use sse_policy::revocation::RevocationList;
use sse_policy::{DenyReason, Identity};

/// What the VM knows of revocations.
#[derive(Default)]
pub(crate) struct Revocations {
    list: RevocationList,
    /// The host's `ETag` for `list`, sent back as `If-None-Match`.
    pub(crate) etag: Option<String>,
    /// When the host last answered (seconds since the epoch); `None`: never.
    fresh_at: Option<u64>,
    /// The callout in flight, if any, and when it was sent.
    pub(crate) in_flight: Option<(u32, u64)>,
}

impl Revocations {
    /// A VM that just started counts as fresh with an empty list, for at most
    /// `max_stale_secs` until its first fetch: the host checks every identified request
    /// against its own list anyway, so refusing everything until the first callout
    /// returns (every Envoy start and reload) would cost availability and buy nothing.
    pub(crate) fn started(&mut self, now: u64) {
        self.fresh_at.get_or_insert(now);
    }

    /// The host sent a new list.
    pub(crate) fn replace(&mut self, list: RevocationList, etag: Option<String>, now: u64) {
        self.list = list;
        self.etag = etag;
        self.fresh_at = Some(now);
    }

    /// The host confirmed the list is current (304).
    pub(crate) fn confirm(&mut self, now: u64) {
        self.fresh_at = Some(now);
    }

    /// Refuses a revoked identity, and every identity while the list is older than
    /// `max_stale` (or was never fetched): fail closed.
    pub(crate) fn check(&self, who: &Identity, now: u64, max_stale: u64) -> Result<(), DenyReason> {
        match self.fresh_at {
            Some(at) if now.saturating_sub(at) <= max_stale => self.list.check(who, now),
            _ => Err(DenyReason::RevocationsStale),
        }
    }
}
