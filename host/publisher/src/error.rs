//! What can go wrong when publishing, split by what the caller should do about it.

/// Why a publish did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The host refused the publish for a reason a retry would not change (a bad token,
    /// another company, an unknown channel, too large, a reused idempotency key). The
    /// `code` is the host's stable error code (`FORBIDDEN`, `IDEMPOTENCY_KEY_REUSED`, ...).
    #[error("publish refused: {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The host's error code.
        code: String,
        /// The host's explanation.
        message: String,
    },
    /// Every attempt failed with a reason worth retrying (unreachable host, timeout,
    /// 429, 5xx); the events may or may not be stored. Publishing again with the same
    /// events is safe only with the same idempotency key, which this client does not
    /// keep across calls: see [`crate::Publisher::publish_batch_with_key`].
    #[error("publish gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// What the last one ran into.
        last: String,
    },
    /// The host answered 200 with a body that is not a publish reply.
    #[error("unexpected reply from the host: {0}")]
    Reply(String),
    /// The client could not be built (a bad URL, no TLS backend).
    #[error("publisher configuration: {0}")]
    Config(String),
}
