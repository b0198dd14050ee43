//! Signed identity headers: how the edge tells the host who is calling.
//!
//! The filter verifies the token, then forwards the identity as `x-sse-*` headers with
//! an HMAC-SHA256 signature (edge secret) over every one of them plus the method, path
//! and a timestamp. The host refuses identity headers whose signature is missing, wrong
//! or older than `edge.max_skew_secs`, so a request that bypasses the edge cannot claim
//! an identity, and a captured one cannot be replayed for long or on another route.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::PolicyConfig;
use crate::decision::Identity;
use crate::secret::Secret;

/// Every header starting with this is the edge's; client copies are stripped.
pub const HEADER_PREFIX: &str = "x-sse-";
/// The company the request acts on.
pub const COMPANY: &str = "x-sse-company";
/// The token subject.
pub const SUBJECT: &str = "x-sse-subject";
/// The token roles, comma separated.
pub const ROLE: &str = "x-sse-role";
/// The subscribed channels, comma separated.
pub const CHANNELS: &str = "x-sse-channels";
/// The token expiry (seconds since the epoch), empty when the token has none.
pub const TOKEN_EXP: &str = "x-sse-token-exp";
/// When the edge signed (seconds since the epoch).
pub const EDGE_TS: &str = "x-sse-edge-ts";
/// The signature, base64url.
pub const EDGE_SIG: &str = "x-sse-edge-sig";

/// Why signed identity headers were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EdgeAuthError {
    /// No signature header (the request did not come through the edge).
    #[error("request carries no edge identity")]
    Missing,
    /// A header is absent or malformed.
    #[error("edge identity headers are malformed")]
    Malformed,
    /// The signature does not match.
    #[error("edge identity signature is invalid")]
    BadSignature,
    /// The timestamp is outside the freshness window.
    #[error("edge identity is stale")]
    Stale,
}

struct Fields<'a> {
    method: &'a str,
    path: &'a str,
    company: &'a str,
    channels: &'a str,
    subject: &'a str,
    roles: &'a str,
    token_exp: &'a str,
    ts: &'a str,
}

impl Fields<'_> {
    /// Length-prefixed, so no choice of field values can collide with another.
    fn mac(&self, secret: &Secret) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose()).expect("HMAC takes any key length");
        mac.update(b"sse-edge-v1\n");
        for f in [
            self.method,
            self.path,
            self.company,
            self.channels,
            self.subject,
            self.roles,
            self.token_exp,
            self.ts,
        ] {
            mac.update(f.len().to_string().as_bytes());
            mac.update(b":");
            mac.update(f.as_bytes());
            mac.update(b"\n");
        }
        mac
    }
}

/// The headers the edge adds for an allowed request, signature last.
pub fn sign(
    secret: &Secret,
    method: &str,
    path: &str,
    identity: &Identity,
    channels: &[String],
    now: u64,
) -> Vec<(&'static str, String)> {
    let channels = channels.join(",");
    let roles = identity.roles.join(",");
    let token_exp = identity.expires_at.map(|e| e.to_string()).unwrap_or_default();
    let ts = now.to_string();
    let fields = Fields {
        method,
        path,
        company: &identity.company,
        channels: &channels,
        subject: &identity.subject,
        roles: &roles,
        token_exp: &token_exp,
        ts: &ts,
    };
    let sig = URL_SAFE_NO_PAD.encode(fields.mac(secret).finalize().into_bytes());
    vec![
        (COMPANY, identity.company.clone()),
        (SUBJECT, identity.subject.clone()),
        (ROLE, roles),
        (CHANNELS, channels),
        (TOKEN_EXP, token_exp),
        (EDGE_TS, ts),
        (EDGE_SIG, sig),
    ]
}

/// Checks signed identity headers (read through `header`) for `method` and `path` at
/// `now`; returns the identity and its channel list.
pub fn verify<'h>(
    config: &PolicyConfig,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    now: u64,
) -> Result<(Identity, Vec<String>), EdgeAuthError> {
    let sig = header(EDGE_SIG).ok_or(EdgeAuthError::Missing)?;
    let get = |name| header(name).ok_or(EdgeAuthError::Malformed);
    let fields = Fields {
        method,
        path,
        company: get(COMPANY)?,
        channels: get(CHANNELS)?,
        subject: get(SUBJECT)?,
        roles: get(ROLE)?,
        token_exp: get(TOKEN_EXP)?,
        ts: get(EDGE_TS)?,
    };
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| EdgeAuthError::Malformed)?;
    fields
        .mac(&config.edge.secret)
        .verify_slice(&sig)
        .map_err(|_| EdgeAuthError::BadSignature)?;
    let ts: u64 = fields.ts.parse().map_err(|_| EdgeAuthError::Malformed)?;
    if now.abs_diff(ts) > config.edge.max_skew_secs {
        return Err(EdgeAuthError::Stale);
    }
    let expires_at = match fields.token_exp {
        "" => None,
        e => Some(e.parse().map_err(|_| EdgeAuthError::Malformed)?),
    };
    let split = |s: &str| -> Vec<String> { s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect() };
    let roles = split(fields.roles);
    let super_admin = roles.iter().any(|r| config.roles.super_admin.contains(r));
    let identity = Identity {
        subject: fields.subject.to_owned(),
        company: fields.company.to_owned(),
        roles,
        expires_at,
        super_admin,
    };
    Ok((identity, split(fields.channels)))
}
