//! Headers of the replies an edge sends itself: CORS (so a browser can read a 401 or 429)
//! and the per-status headers of RFC 6750 and RFC 9110.

use crate::config::{Cors, PolicyConfig};
use crate::decision::{DenyReason, ErrorCode};
use crate::jwt::TokenError;

/// CORS response headers for a request from `origin`: only `Vary: Origin` when the
/// origin is absent or not allowed (the browser then withholds the response, as it
/// should). `Vary` is on every answer, granted or not, so a shared cache never hands one
/// origin's answer to another.
pub fn cors_headers(cors: &Cors, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let vary = ("vary", "Origin".to_owned());
    let Some(origin) = origin else {
        return vec![vary];
    };
    let allowed = cors.allowed_origins.iter().any(|o| o == origin || o == "*");
    if !allowed {
        return vec![vary];
    }
    let mut headers = vec![("access-control-allow-origin", origin.to_owned()), vary];
    if cors.allow_credentials {
        headers.push(("access-control-allow-credentials", "true".to_owned()));
    }
    headers.push((
        "access-control-expose-headers",
        "retry-after, www-authenticate".to_owned(),
    ));
    headers
}

/// Extra headers of a CORS preflight reply.
pub fn preflight_headers(cors: &Cors) -> Vec<(&'static str, String)> {
    vec![
        ("access-control-allow-methods", "GET, POST, OPTIONS".to_owned()),
        (
            "access-control-allow-headers",
            "authorization, content-type, last-event-id, cache-control".to_owned(),
        ),
        ("access-control-max-age", cors.max_age_secs.to_string()),
    ]
}

/// Headers for an error reply with `code`: content type, `WWW-Authenticate` on 401,
/// `Retry-After` on 429 and 503, never cached.
pub fn error_headers(config: &PolicyConfig, code: ErrorCode, token_missing: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ];
    match code {
        ErrorCode::Unauthorized => headers.push((
            "www-authenticate",
            if token_missing {
                r#"Bearer realm="sse""#.to_owned()
            } else {
                r#"Bearer realm="sse", error="invalid_token""#.to_owned()
            },
        )),
        ErrorCode::TooManyConnections | ErrorCode::RateLimited | ErrorCode::Unavailable => {
            headers.push(("retry-after", config.limits.retry_after_secs.to_string()))
        }
        _ => {}
    }
    headers
}

/// Every header of the local reply for a denial, CORS included.
pub fn deny_headers(config: &PolicyConfig, reason: &DenyReason, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = error_headers(
        config,
        reason.code(),
        matches!(reason, DenyReason::Token(TokenError::Missing)),
    );
    headers.extend(cors_headers(&config.cors, origin));
    headers
}
