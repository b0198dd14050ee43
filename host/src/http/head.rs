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
/// How long a new connection may take, from accept, to send its whole first request
/// head. Sniffing the protocol and reading the head share this one deadline: a silent
/// or trickling client is held this long at most, whichever server reads its head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The first head's deadline for a connection accepted now.
pub(crate) fn deadline() -> Instant {
    Instant::now() + HEAD_TIMEOUT
}

/// What is left of `deadline` for hyper's header timeout, which it also applies to later
/// requests on a kept-alive connection: at least a second, so a client that was slow to
/// start is not cut off on its next request.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1))
}
