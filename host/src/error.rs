//! The host's errors and their one mapping to wire error codes (and through
//! [`ErrorCode::status`], to HTTP statuses).

use sse_policy::identity::EdgeAuthError;
use sse_policy::{DenyReason, ErrorCode};

use crate::admin::revocations::RevokeError;
use crate::backend::BackendError;
use crate::hub::limits::LimitError;
use crate::hub::PublishError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The policy refused the request.
    #[error(transparent)]
    Denied(#[from] DenyReason),
    /// Edge identity headers were missing, forged or stale.
    #[error(transparent)]
    Edge(#[from] EdgeAuthError),
    /// The event was refused.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A connection limit is reached.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Malformed input (body, parameters).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over the limit.
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The company's publish rate limit is reached.
    #[error("publish rate limit reached for this company")]
    RateLimited,
    /// The host is shutting down.
    #[error("host is shutting down; reconnect to another instance")]
    Draining,
    /// No such route.
    #[error("no such route")]
    NotFound,
    /// A dev host asked for by a name that is not loopback (DNS rebinding).
    #[error("the dev host answers loopback host names only")]
    ForeignHost,
    /// The embedded edge failed (trap, deadline, refusal): fail closed.
    #[error("edge filter unavailable")]
    EdgeFailed,
    /// The event store (Redis) cannot be reached: nothing was stored.
    #[error("event store unavailable; retry shortly")]
    StoreUnavailable,
    /// Stored, but not confirmed by enough replicas in time (`redis.min_replicas_ack`).
    #[error(
        "the events were stored but not confirmed by enough replicas in time; retry with the same Idempotency-Key"
    )]
    NotReplicated,
    /// The revocation list (or the company's share of it) is full.
    #[error(transparent)]
    Revocations(#[from] crate::admin::revocations::RevokeError),
}

impl From<BackendError> for HostError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Publish(p) => Self::Publish(p),
            BackendError::Limit(l) => Self::Limit(l),
            BackendError::Draining => Self::Draining,
            BackendError::RateLimited => Self::RateLimited,
            e @ BackendError::NotReplicated { .. } => {
                tracing::warn!(error = %e, "publish not confirmed by enough replicas");
                Self::NotReplicated
            }
            BackendError::Unavailable(why) => {
                // The reason may name hosts; it goes to the log, the client gets the code.
                tracing::warn!(error = %why, "event store unavailable");
                Self::StoreUnavailable
            }
        }
    }
}

impl HostError {
    /// The wire code. The only place host errors become statuses.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Denied(reason) => reason.code(),
            Self::Edge(_) => ErrorCode::Unauthorized,
            Self::Publish(PublishError::InvalidEventType) => ErrorCode::InvalidRequest,
            Self::Publish(PublishError::TooLarge) | Self::BodyTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Publish(PublishError::KeyReused) => ErrorCode::IdempotencyKeyReused,
            Self::Limit(_) => ErrorCode::TooManyConnections,
            Self::BadRequest(_) => ErrorCode::InvalidRequest,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::Draining | Self::EdgeFailed | Self::StoreUnavailable => ErrorCode::Unavailable,
            Self::NotFound => ErrorCode::NotFound,
            Self::ForeignHost => ErrorCode::Forbidden,
            // The company's share: a limit it reached, like a rate. The whole list: the
            // host cannot take more (entries leave at their `until`).
            Self::Revocations(RevokeError::CompanyFull) => ErrorCode::RateLimited,
            Self::Revocations(RevokeError::Full) => ErrorCode::Unavailable,
            Self::Revocations(RevokeError::Malformed) => ErrorCode::InvalidRequest,
            Self::NotReplicated => ErrorCode::NotReplicated,
        }
    }

    /// True for a 401 caused by the absence of any credential (RFC 6750: no error code).
    pub fn token_missing(&self) -> bool {
        matches!(
            self,
            Self::Denied(DenyReason::Token(sse_policy::jwt::TokenError::Missing)) | Self::Edge(EdgeAuthError::Missing)
        )
    }

    /// A stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Denied(r) => r.label(),
            Self::Edge(_) => "edge_identity",
            Self::Publish(PublishError::KeyReused) => "idempotency_key_reused",
            Self::Publish(_) => "publish_invalid",
            Self::Limit(LimitError::Company) => "too_many_connections",
            Self::Limit(LimitError::Total) => "host_full",
            Self::BadRequest(_) => "invalid_request",
            Self::BodyTooLarge(_) => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Draining => "draining",
            Self::NotFound => "not_found",
            Self::ForeignHost => "dev_foreign_host",
            Self::EdgeFailed => "edge_failure",
            Self::StoreUnavailable => "store_unavailable",
            Self::Revocations(_) => "revocations_full",
            Self::NotReplicated => "not_replicated",
        }
    }
}
