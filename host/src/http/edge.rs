//! Who is calling: the edge modes of the host.
//!
//! - `native`: the host runs `sse-policy` on the request itself.
//! - `envoy` and `wasm`: the filter (in Envoy, or embedded) already decided; the host accepts only identities
//!   whose `x-sse-*` headers carry a valid, fresh signature over this method and path,
//!   and checks that the query names the same company and channels that were signed.
//!
//! Why the host re-verifies what its own embedded filter just signed (mode `wasm`): the
//! filter is a guest module whose output is the same `x-sse-*` headers Envoy forwards,
//! and the host reads them through this one path in both modes. One trust path means
//! the embedded edge is tested by every Envoy-mode test and vice versa, a filter bug
//! cannot produce an identity the host would not accept from Envoy, and a client's own
//! `x-sse-*` headers (which the filter strips) are refused the same way everywhere. The
//! cost is one HMAC per request (about a microsecond).

use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use hyper::Request;
use sse_policy::identity;
use sse_policy::{
    check_content_type, decide_with, route_of, subscription, Decision, DenyReason, Grant, Request as PolicyRequest,
    Route,
};

use crate::config::EdgeMode;
use crate::error::HostError;
use crate::state::AppState;

use crate::clock::unix_secs as unix_now;

/// Authorizes a request under the host's edge mode. In modes `envoy` and `wasm` also
/// returns the digest of the body the edge signed, which whoever reads the body checks.
pub(crate) fn authorize<B>(state: &AppState, req: &Request<B>) -> Result<(Grant, Option<String>), HostError> {
    let policy = &state.config.policy;
    let method = req.method().as_str();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let cookies: Vec<&[u8]> = req.headers().get_all(COOKIE).iter().map(|v| v.as_bytes()).collect();
    let cookie = cookies.join(&b"; "[..]);
    let view = PolicyRequest::new(method, target)
        .with_authorization_values(req.headers().get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()))
        .with_cookie((!cookie.is_empty()).then_some(cookie.as_slice()))
        .with_content_type(req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()));
    match state.config.edge {
        EdgeMode::Native => match decide_with(policy, &view, unix_now(), &mut |token, rules, now| {
            // The lock is held to look up and to store, not while a signature is checked.
            // (One lock for the host: a lookup is a hash and a clone; shard it if it shows.)
            if let Some(claims) = state.tokens.lock().lookup(token, now) {
                return Ok(claims);
            }
            let claims = sse_policy::jwt::verify(token, rules, now)?;
            state.tokens.lock().store(token, &claims, now);
            Ok(claims)
        }) {
            Decision::Allow(grant) => {
                check_revoked(state, &grant)?;
                Ok((grant, None))
            }
            Decision::Deny(reason) => Err(reason.into()),
        },
        // Behind Envoy or the embedded filter: the filter decided and signed.
        EdgeMode::Envoy | EdgeMode::Wasm => {
            let route = route_of(policy, method, view.path)?;
            // The filter checked it too; the dev route reaches here unsigned.
            check_content_type(route, view.content_type)?;
            if matches!(route, Route::Other | Route::Preflight | Route::TestBroadcast) {
                let grant = Grant {
                    route,
                    identity: None,
                    channels: Vec::new(),
                    token_source: None,
                };
                return Ok((grant, None));
            }
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            // The signature covers the target as forwarded, query included.
            let signed = identity::verify(policy, method, target, header, unix_now())?;
            let (who, signed_channels) = (signed.identity, signed.channels);
            let channels = if matches!(route, Route::Stream | Route::Poll) {
                let (company, channels) = subscription(policy, &view)?;
                if company != who.company || channels != signed_channels {
                    return Err(DenyReason::CompanyMismatch.into());
                }
                // The filter decided with the same policy; the host checks its half again,
                // as it does for a publish's body.
                if !channels.iter().all(|c| policy.limits.channel_allowed_for(&company, c)) {
                    return Err(DenyReason::ChannelForbidden.into());
                }
                channels
            } else {
                Vec::new()
            };
            let grant = Grant {
                route,
                identity: Some(who),
                channels,
                token_source: None,
            };
            // The filter checked its copy of the list; the host checks its own, which a
            // revocation reaches first (the filter's lags by up to a refresh).
            check_revoked(state, &grant)?;
            Ok((grant, Some(signed.body_sha256)))
        }
    }
}

/// Refuses a token an admin revoked (`crate::admin`).
fn check_revoked(state: &AppState, grant: &Grant) -> Result<(), HostError> {
    if let Some(who) = &grant.identity {
        state.broker.admin().revocations.check(who, unix_now())?;
    }
    Ok(())
}
