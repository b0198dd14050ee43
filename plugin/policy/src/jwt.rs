//! Compact JWS verification over the typed keys of [`crate::keys`]. Only the crypto is
//! delegated (RustCrypto crates that build for wasm32 with no imports); the envelope is
//! parsed here, strictly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha2::{Sha256, Sha384, Sha512};

use crate::config::JwtRules;
use crate::keys::{Algorithm, Key, Material};

/// Tokens longer than this are refused before any decoding (bounds work per request).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. The variant goes to metrics and debug logs; clients only
/// ever see `401 UNAUTHORIZED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token in any enabled source.
    #[error("no token presented")]
    Missing,
    /// Over [`MAX_TOKEN_BYTES`].
    #[error("token is larger than 8 KiB")]
    TooLarge,
    /// Not three base64url segments, or undecodable.
    #[error("token is not a well-formed compact JWS")]
    Malformed,
    /// `alg` is `none`, unknown, or has no configured key of its family.
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header has `crit` (RFC 7515 4.1.11): it names extensions the token must not be
    /// accepted without understanding, and this verifier understands none.
    #[error("token has critical header extensions")]
    CriticalHeader,
    /// A `kid` was given that no configured key carries.
    #[error("token key id is unknown")]
    UnknownKey,
    /// No candidate key verified the signature.
    #[error("token signature is invalid")]
    BadSignature,
    /// The payload is not a JSON object of the expected claim types.
    #[error("token claims are malformed")]
    BadClaims,
    /// `exp` is in the past (beyond leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `exp` is required by config and absent.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `iss` is not an accepted issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// No `aud` value is an accepted audience.
    #[error("token audience is not accepted")]
    WrongAudience,
}

impl TokenError {
    /// A stable label for metrics (`denied_total{reason=...}`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::TooLarge => "token_too_large",
            Self::Malformed => "token_malformed",
            Self::UnsupportedAlgorithm => "token_algorithm",
            Self::CriticalHeader => "token_crit",
            Self::UnknownKey => "token_unknown_key",
            Self::BadSignature => "token_signature",
            Self::BadClaims => "token_claims",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::MissingExpiry => "token_no_expiry",
            Self::WrongIssuer => "token_issuer",
            Self::WrongAudience => "token_audience",
        }
    }
}

/// The claims this product uses, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, empty when absent.
    pub subject: String,
    /// `company_id`: the tenant the token belongs to.
    pub company_id: Option<String>,
    /// `role` and/or `roles`, merged.
    pub roles: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// `jti`, empty when absent (revocation by token).
    pub token_id: String,
    /// `iat`, seconds since the epoch (revocation by subject).
    pub issued_at: Option<u64>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Present at all (even `null`) means refuse.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// True when the field is there, whatever its value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    company_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    jti: Option<String>,
}

/// RFC 7519 NumericDate: a non-negative JSON number, fractions allowed (truncated).
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let secs = n
        .as_u64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64));
    secs.map(Some)
        .ok_or_else(|| serde::de::Error::custom("NumericDate must be a non-negative number"))
}

/// Verifies `token` against `rules` at `now` (seconds since the epoch).
pub fn verify(token: &str, rules: &JwtRules, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Header = decode_json(h)?;
    if header.crit {
        return Err(TokenError::CriticalHeader);
    }
    let alg = Algorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed)?;
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];

    let mut tried = false;
    let mut verified = false;
    for key in rules.keys.candidates(alg, header.kid.as_deref()) {
        tried = true;
        if check_signature(key, alg, signing_input, &signature) {
            verified = true;
            break;
        }
    }
    if !tried {
        let family_exists = rules.keys.candidates(alg, None).next().is_some();
        return Err(if header.kid.is_some() && family_exists {
            TokenError::UnknownKey
        } else {
            TokenError::UnsupportedAlgorithm
        });
    }
    if !verified {
        return Err(TokenError::BadSignature);
    }
    let claims: RawClaims = decode_json(p).map_err(|_| TokenError::BadClaims)?;
    check_claims(claims, rules, now)
}

fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

fn check_signature(key: &Key, alg: Algorithm, input: &[u8], sig: &[u8]) -> bool {
    use rsa::signature::Verifier as _;
    match (&key.material, alg) {
        (Material::Hmac(k), Algorithm::HS256) => hmac_ok::<Hmac<Sha256>>(k, input, sig),
        (Material::Hmac(k), Algorithm::HS384) => hmac_ok::<Hmac<Sha384>>(k, input, sig),
        (Material::Hmac(k), Algorithm::HS512) => hmac_ok::<Hmac<Sha512>>(k, input, sig),
        (Material::Rsa(k), Algorithm::RS256) => {
            rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| k.verify(input, &s).is_ok())
        }
        (Material::EcP256(vk), Algorithm::ES256) => {
            p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| vk.verify(input, &s).is_ok())
        }
        (Material::Ed25519(vk), Algorithm::EdDSA) => {
            ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| vk.verify_strict(input, &s).is_ok())
        }
        _ => false,
    }
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], sig: &[u8]) -> bool {
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(input);
            mac.verify_slice(sig).is_ok()
        }
        Err(_) => false,
    }
}

fn check_claims(c: RawClaims, rules: &JwtRules, now: u64) -> Result<Claims, TokenError> {
    let leeway = rules.leeway_secs;
    match c.exp {
        Some(exp) if now >= exp.saturating_add(leeway) => return Err(TokenError::Expired),
        None if rules.require_exp => return Err(TokenError::MissingExpiry),
        _ => {}
    }
    for t in [c.nbf, c.iat].into_iter().flatten() {
        if t > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    if !rules.issuers.is_empty() && !c.iss.as_ref().is_some_and(|i| rules.issuers.contains(i)) {
        return Err(TokenError::WrongIssuer);
    }
    if !rules.audiences.is_empty() {
        let ok = match &c.aud {
            Some(Audience::One(a)) => rules.audiences.contains(a),
            Some(Audience::Many(list)) => list.iter().any(|a| rules.audiences.contains(a)),
            None => false,
        };
        if !ok {
            return Err(TokenError::WrongAudience);
        }
    }
    let mut roles: Vec<String> = c.roles.unwrap_or_default();
    if let Some(role) = c.role {
        if !roles.contains(&role) {
            roles.insert(0, role);
        }
    }
    // These values travel on in identity headers and logs: no control characters, no
    // commas in roles (the header's separator), bounded length.
    let printable = |s: &str| s.len() <= 256 && !s.chars().any(char::is_control);
    let subject = c.sub.unwrap_or_default();
    let role_ok = |r: &String| !r.is_empty() && r.len() <= 128 && r.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    let token_id = c.jti.unwrap_or_default();
    if !printable(&subject)
        || !printable(&token_id)
        || !c.company_id.as_deref().is_none_or(printable)
        || !roles.iter().all(role_ok)
    {
        return Err(TokenError::BadClaims);
    }
    Ok(Claims {
        subject,
        company_id: c.company_id,
        roles,
        expires_at: c.exp,
        token_id,
        issued_at: c.iat,
    })
}
