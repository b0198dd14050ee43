//! Signed identity headers: how the edge tells the host who is calling.
//!
//! The filter verifies the token, then forwards the identity as `x-sse-*` headers with
//! an HMAC-SHA256 signature (edge secret) over every one of them plus the method, the
//! request target as forwarded (path and query: a captured signature cannot be reused
//! with another cursor, channel or parameter), the SHA-256 of the request body (a
//! captured publish cannot be replayed with other events) and a timestamp. The host
//! refuses identity headers whose signature is missing, wrong or older than
//! `edge.max_skew_secs`, and a body whose digest is not the signed one, so a request that
//! bypasses the edge cannot claim an identity, and a captured one cannot be replayed for
//! long, on another route or with another body.
//!
//! One encoding end to end: every value is percent-encoded (all but ASCII letters,
//! digits and `-._~`), lists are joined with `,` after encoding their items, and the
//! signature covers the encoded text. So a header value is always visible ASCII (a
//! `sub` like `José` reads the same through Envoy, the embedded edge and the host), and
//! no claim can smuggle a separator: a role `x,SUPER_ADMIN` stays one role.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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
/// The token's `jti` (percent-encoded), empty when it has none.
pub const TOKEN_ID: &str = "x-sse-token-id";
/// The token's `iat` (seconds since the epoch), empty when it has none.
pub const TOKEN_IAT: &str = "x-sse-token-iat";
/// The SHA-256 of the request body the edge saw (base64url). Absent for an empty body
/// (every stream: the header would be kept for the stream's whole life in the proxy):
/// the signature then covers [`EMPTY_BODY_SHA256`], so removing the header from a
/// request with a body breaks it.
pub const BODY_SHA256: &str = "x-sse-body-sha256";
/// [`body_sha256`] of an empty body.
pub const EMPTY_BODY_SHA256: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
/// When the edge signed (seconds since the epoch).
pub const EDGE_TS: &str = "x-sse-edge-ts";
/// The signature, base64url.
pub const EDGE_SIG: &str = "x-sse-edge-sig";
/// How far in the future a timestamp may be (clock differences between edge and host);
/// `edge.max_skew_secs` bounds the past.
pub const MAX_FUTURE_SKEW_SECS: u64 = 5;

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
    /// The body is not the one the edge signed.
    #[error("request body is not the one the edge signed")]
    BodyMismatch,
}

/// What stays as is in a header value: RFC 3986's unreserved characters.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODED).to_string()
}

fn encode_list(items: &[String]) -> String {
    items.iter().map(|i| encode(i)).collect::<Vec<_>>().join(",")
}

/// One identity header value as the edge encoded it, decoded (also for readers of a
/// single header that do not verify the signature themselves, such as slot bookkeeping).
pub fn decode_value(value: &str) -> Result<String, EdgeAuthError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| EdgeAuthError::Malformed)
}

fn decode_list(value: &str) -> Result<Vec<String>, EdgeAuthError> {
    value.split(',').filter(|x| !x.is_empty()).map(decode_value).collect()
}

struct Fields<'a> {
    method: &'a str,
    path: &'a str,
    company: &'a str,
    channels: &'a str,
    subject: &'a str,
    roles: &'a str,
    token_exp: &'a str,
    token_id: &'a str,
    token_iat: &'a str,
    body: &'a str,
    ts: &'a str,
}

impl Fields<'_> {
    /// Length-prefixed, so no choice of field values can collide with another.
    fn mac(&self, secret: &Secret) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose()).expect("HMAC takes any key length");
        mac.update(b"sse-edge-v3\n");
        for f in [
            self.method,
            self.path,
            self.company,
            self.channels,
            self.subject,
            self.roles,
            self.token_exp,
            self.token_id,
            self.token_iat,
            self.body,
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

/// The SHA-256 of a request body as the identity headers carry it (base64url).
pub fn body_sha256(body: &[u8]) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// Checks that `body` is the one whose digest the edge signed ([`Verified::body_sha256`]).
pub fn check_body(signed_sha256: &str, body: &[u8]) -> Result<(), EdgeAuthError> {
    if body_sha256(body) == signed_sha256 {
        Ok(())
    } else {
        Err(EdgeAuthError::BodyMismatch)
    }
}

/// What verified identity headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who is calling.
    pub identity: Identity,
    /// The channels the edge granted.
    pub channels: Vec<String>,
    /// The digest of the body the edge saw ([`body_sha256`]): whoever reads the body
    /// must check it is this one.
    pub body_sha256: String,
}

/// The headers the edge adds for an allowed request whose body is `body`, signature
/// last.
pub fn sign(
    secret: &Secret,
    method: &str,
    path: &str,
    identity: &Identity,
    channels: &[String],
    body: &[u8],
    now: u64,
) -> Vec<(&'static str, String)> {
    let channels = encode_list(channels);
    let roles = encode_list(&identity.roles);
    let company = encode(&identity.company);
    let subject = encode(&identity.subject);
    let token_exp = identity.expires_at.map(|e| e.to_string()).unwrap_or_default();
    let token_id = encode(&identity.token_id);
    let token_iat = identity.issued_at.map(|e| e.to_string()).unwrap_or_default();
    let ts = now.to_string();
    let body = body_sha256(body);
    let fields = Fields {
        method,
        path,
        company: &company,
        channels: &channels,
        subject: &subject,
        roles: &roles,
        token_exp: &token_exp,
        token_id: &token_id,
        token_iat: &token_iat,
        body: &body,
        ts: &ts,
    };
    let sig = URL_SAFE_NO_PAD.encode(fields.mac(secret).finalize().into_bytes());
    let mut headers = vec![
        (COMPANY, company),
        (SUBJECT, subject),
        (ROLE, roles),
        (CHANNELS, channels),
        (TOKEN_EXP, token_exp),
        (TOKEN_ID, token_id),
        (TOKEN_IAT, token_iat),
    ];
    if body != EMPTY_BODY_SHA256 {
        headers.push((BODY_SHA256, body));
    }
    headers.push((EDGE_TS, ts));
    headers.push((EDGE_SIG, sig));
    headers
}

/// Checks signed identity headers (read through `header`) for `method` and `path` (the
/// request target as received, query included) at `now`; returns the identity, its
/// channel list and the digest of the body it was signed with.
pub fn verify<'h>(
    config: &PolicyConfig,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    now: u64,
) -> Result<Verified, EdgeAuthError> {
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
        token_id: get(TOKEN_ID)?,
        token_iat: get(TOKEN_IAT)?,
        body: header(BODY_SHA256).unwrap_or(EMPTY_BODY_SHA256),
        ts: get(EDGE_TS)?,
    };
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| EdgeAuthError::Malformed)?;
    fields
        .mac(&config.edge.secret)
        .verify_slice(&sig)
        .map_err(|_| EdgeAuthError::BadSignature)?;
    let ts: u64 = fields.ts.parse().map_err(|_| EdgeAuthError::Malformed)?;
    if ts > now.saturating_add(MAX_FUTURE_SKEW_SECS) || now.saturating_sub(ts) > config.edge.max_skew_secs {
        return Err(EdgeAuthError::Stale);
    }
    let expires_at = match fields.token_exp {
        "" => None,
        e => Some(e.parse().map_err(|_| EdgeAuthError::Malformed)?),
    };
    let issued_at = match fields.token_iat {
        "" => None,
        e => Some(e.parse().map_err(|_| EdgeAuthError::Malformed)?),
    };
    let roles = decode_list(fields.roles)?;
    let super_admin = roles.iter().any(|r| config.roles.super_admin.contains(r));
    let identity = Identity {
        subject: decode_value(fields.subject)?,
        company: decode_value(fields.company)?,
        roles,
        expires_at,
        super_admin,
        token_id: decode_value(fields.token_id)?,
        issued_at,
    };
    Ok(Verified {
        identity,
        channels: decode_list(fields.channels)?,
        body_sha256: fields.body.to_owned(),
    })
}
