//! # sse-policy
//!
//! The one policy every edge of sse-edge applies: token verification, tenant and channel
//! rules, route rules and signed identities. Pure Rust with no I/O, no clock and no
//! proxy-wasm, tokio or wasmtime: the proxy-wasm filter (built for wasm32 and loaded by
//! Envoy or by the host's embedded edge) and the host's native edge call the same code,
//! so every deployment makes the same decisions. Time is passed in, so expiry is
//! testable.
//!
//! # Layout
//! - [`config`]: `PolicyConfig`, parsed from the filter's JSON configuration.
//! - [`keys`] / [`jwt`]: JWK Set and shared-secret keys, compact JWS verification.
//! - [`request`]: the request view, token sources and token stripping.
//! - [`decide()`]: routes and authorization, returning a [`Decision`]; [`decide_cached()`]
//!   with a [`cache::TokenCache`] of verified tokens;
//!   [`subscription()`] and [`authorize_publish()`] check what a stream's query and a
//!   publish's body name.
//! - [`decision`]: decisions, deny reasons and the one error-code-to-status mapping.
//! - [`identity`]: signing and verifying the `x-sse-*` identity headers.
//! - [`reply`]: CORS and error headers of local replies.
//! - [`revocation`]: revoked tokens and the signed feed that carries them to the filter.
//! - [`slots`]: per-company connection counters as stored in proxy-wasm shared data.
//! - [`mint`]: issuing HS256 tokens (dev tokens, publisher services, tests).

pub mod cache;
pub mod config;
mod decide;
pub mod decision;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod identity;
pub mod jwt;
pub mod keys;
pub mod mint;
pub mod reply;
pub mod request;
pub mod revocation;
pub mod secret;
pub mod slots;

pub use config::{ConfigError, PolicyConfig};
pub use decide::{
    authorize_publish, check_content_type, decide, decide_cached, decide_with, may_publish_to, route_of, subscription,
    MAX_QUERY_BYTES,
};
pub use decision::{error_body, Decision, DenyReason, ErrorCode, Grant, Identity, Route};
pub use request::{Request, TokenSource};
pub use secret::Secret;

/// `rsa` reaches getrandom 0.2, which needs a registered source on
/// wasm32-unknown-unknown. Signature verification never asks for randomness, so the
/// source always fails: if something ever does ask, it fails closed.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[allow(unsafe_code)]
mod no_randomness {
    fn unavailable(_: &mut [u8]) -> Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }
    getrandom::register_custom_getrandom!(unavailable);
}
