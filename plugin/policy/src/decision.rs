//! Decisions and the one mapping from error codes to HTTP statuses. The filter and the
//! host both answer with [`ErrorCode::status`] and [`error_body`], so a client sees the
//! same reply whichever edge refused it.

use crate::jwt::TokenError;
use crate::request::TokenSource;

/// The stable error codes of the wire protocol (`{"error": CODE}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: company id missing or malformed.
    InvalidCompanyId,
    /// 400: channel missing, unknown, or too many.
    InvalidChannel,
    /// 400: any other malformed input.
    InvalidRequest,
    /// 401: no valid token.
    Unauthorized,
    /// 403: valid token, not allowed here.
    Forbidden,
    /// 404: no such route.
    NotFound,
    /// 413: event or body too large.
    PayloadTooLarge,
    /// 415: a publish whose body is not declared as JSON.
    UnsupportedMediaType,
    /// 422: a publish's `Idempotency-Key` was used before for other events.
    IdempotencyKeyReused,
    /// 429: per-company or total connection limit reached.
    TooManyConnections,
    /// 429: publish rate limit reached.
    RateLimited,
    /// 503: draining, backend down, or the edge failed (fail closed).
    Unavailable,
    /// 503: a publish was stored but fewer replicas than required confirmed it in time;
    /// retry it with the same `Idempotency-Key` (it is not stored twice).
    NotReplicated,
}

impl ErrorCode {
    /// The HTTP status for this code. This is the only status mapping in the product.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidCompanyId | Self::InvalidChannel | Self::InvalidRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::IdempotencyKeyReused => 422,
            Self::TooManyConnections | Self::RateLimited => 429,
            Self::Unavailable | Self::NotReplicated => 503,
        }
    }

    /// The code as it appears in JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCompanyId => "INVALID_COMPANY_ID",
            Self::InvalidChannel => "INVALID_CHANNEL",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::TooManyConnections => "TOO_MANY_CONNECTIONS",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::NotReplicated => "NOT_REPLICATED",
        }
    }
}

/// `{"error":"CODE","message":"..."}`, the body of every error reply.
pub fn error_body(code: ErrorCode, message: &str) -> String {
    serde_json::json!({ "error": code.as_str(), "message": message }).to_string()
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// Not a route of this product (or dev route without dev mode).
    #[error("no such route")]
    NotFound,
    /// Token missing or invalid.
    #[error("{0}")]
    Token(TokenError),
    /// `companyId` missing or not matching the company-id pattern.
    #[error("companyId is missing or invalid")]
    InvalidCompanyId,
    /// `channel` missing, not whitelisted, or too many.
    #[error("channel {0}")]
    InvalidChannel(&'static str),
    /// Another parameter is malformed.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The token's company is not the requested company (and the caller is not super).
    #[error("token is not valid for this company")]
    CompanyMismatch,
    /// The caller's role may not subscribe to this channel.
    #[error("role may not subscribe to this channel")]
    ChannelForbidden,
    /// The caller's role may not use this route.
    #[error("role may not use this route")]
    RoleForbidden,
    /// The company is at its connection limit.
    #[error("too many connections for this company")]
    TooManyConnections,
    /// A publish without `Content-Type: application/json`.
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    /// An admin revoked this token (by `jti` or subject).
    #[error("token was revoked")]
    Revoked,
    /// The edge's revocation list is older than `edge.revocations.max_stale_secs`: it
    /// cannot tell whether the token was revoked, so it refuses (fail closed).
    #[error("the edge cannot check revocations right now")]
    RevocationsStale,
}

impl DenyReason {
    /// The wire code for this reason.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Token(_) => ErrorCode::Unauthorized,
            Self::InvalidCompanyId => ErrorCode::InvalidCompanyId,
            Self::InvalidChannel(_) => ErrorCode::InvalidChannel,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::CompanyMismatch | Self::ChannelForbidden | Self::RoleForbidden => ErrorCode::Forbidden,
            Self::TooManyConnections => ErrorCode::TooManyConnections,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::Revoked => ErrorCode::Unauthorized,
            Self::RevocationsStale => ErrorCode::Unavailable,
        }
    }

    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Token(e) => e.label(),
            Self::InvalidCompanyId => "invalid_company_id",
            Self::InvalidChannel(_) => "invalid_channel",
            Self::InvalidRequest(_) => "invalid_request",
            Self::CompanyMismatch => "company_mismatch",
            Self::ChannelForbidden => "channel_forbidden",
            Self::RoleForbidden => "role_forbidden",
            Self::TooManyConnections => "too_many_connections",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Revoked => "revoked",
            Self::RevocationsStale => "revocations_stale",
        }
    }

    /// The JSON body to send.
    pub fn body(&self) -> String {
        error_body(self.code(), &self.to_string())
    }
}

/// The routes of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET {prefix}/stream`: the SSE stream (takes a connection slot).
    Stream,
    /// `GET {prefix}/poll`: the polling fallback.
    Poll,
    /// `GET {prefix}/stats`: admin statistics.
    Stats,
    /// `POST {prefix}/publish`: the publish API.
    Publish,
    /// `GET {prefix}/admin/connections`: who is connected (admins).
    AdminConnections,
    /// `POST {prefix}/admin/disconnect`: end matching streams (admins).
    AdminDisconnect,
    /// `POST {prefix}/admin/revoke`: refuse tokens by `jti` or subject (admins).
    AdminRevoke,
    /// `POST {prefix}/test-broadcast`: dev-only manual test.
    TestBroadcast,
    /// `OPTIONS` on a known route: CORS preflight, answered without a token.
    Preflight,
    /// Outside the prefix (health, metrics, the web client): not ours to decide.
    Other,
}

impl Route {
    /// Routes whose JSON body the edge signs (it waits for the whole body).
    pub fn has_body(self) -> bool {
        matches!(self, Self::Publish | Self::AdminDisconnect | Self::AdminRevoke)
    }

    /// Routes for a company's admins (and super-admins).
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            Self::Stats | Self::AdminConnections | Self::AdminDisconnect | Self::AdminRevoke
        )
    }
}

/// Who is calling, as proven by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub subject: String,
    /// The company the request acts on (the requested one for streams/polls, the
    /// token's own otherwise; empty for a super-admin token without a company).
    pub company: String,
    /// The token's roles.
    pub roles: Vec<String>,
    /// The token's `exp`: the stream must end by then.
    pub expires_at: Option<u64>,
    /// True when a role is a super-admin role.
    pub super_admin: bool,
    /// The token's `jti`, empty when it has none (revocation by token).
    pub token_id: String,
    /// The token's `iat` (revocation by subject refuses tokens issued up to a time).
    pub issued_at: Option<u64>,
}

/// An allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Which route.
    pub route: Route,
    /// The verified caller (`None` for preflight, dev test-broadcast and other paths).
    pub identity: Option<Identity>,
    /// Channels the request subscribes to (streams and polls), deduplicated, in order.
    pub channels: Vec<String>,
    /// Where the token was found, so the edge can strip it.
    pub token_source: Option<TokenSource>,
}

/// The outcome of [`crate::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request.
    Allow(Grant),
    /// Answer it locally.
    Deny(DenyReason),
}
