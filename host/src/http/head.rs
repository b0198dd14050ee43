//! Limits on a request head, shared by both HTTP/1.1 servers (the stream fast path and
//! hyper), so which one answers (it depends on how TCP splits the first bytes) changes
//! nothing a client can see, and by the sniffing before either.

use std::time::Duration;

use tokio::time::Instant;

/// Largest request head, in bytes; larger ones get 431 on both paths (Node.js's default
/// too; a token and a few cookies take a few KiB).
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most request headers; more get 431 on both paths. hyper's own built-in limit (setting
/// another one makes hyper allocate every request's headers on the heap).
pub(crate) const MAX_HEADERS: usize = 100;
/// What is left of `deadline` (a connection's first-head deadline, `http.head_timeout`
/// after accept, shared by sniffing and head reading) for hyper's header timeout. hyper
/// also applies it to later requests on a kept-alive connection: at least a second, so
/// a client that was slow to start is not cut off on its next request.
pub(crate) fn remaining(deadline: Instant, head_timeout: Duration) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(head_timeout.min(Duration::from_secs(1)))
}
