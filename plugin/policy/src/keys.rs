//! Verification keys: a shared HMAC secret and/or an inline JWK Set, each key bound to
//! the one algorithm family its type allows. Binding keys to families is what makes
//! algorithm confusion impossible: an `HS256` token is only ever checked against an
//! `oct` key, never against the bytes of an RSA or EC public key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::secret::Secret;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A JWS algorithm this policy can verify. `none` is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Parses a JOSE `alg` value; unknown names (including `none`) give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "ES256" => Self::ES256,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }
}

/// Key material, typed by family.
#[derive(Clone)]
pub(crate) enum Material {
    Hmac(Vec<u8>),
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<sha2::Sha256>>),
    EcP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Material {
    fn admits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (Material::Hmac(_), HS256 | HS384 | HS512)
                | (Material::Rsa(_), RS256)
                | (Material::EcP256(_), ES256)
                | (Material::Ed25519(_), EdDSA)
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            Material::Hmac(_) => "oct",
            Material::Rsa(_) => "RSA",
            Material::EcP256(_) => "EC P-256",
            Material::Ed25519(_) => "OKP Ed25519",
        }
    }
}

/// One verification key.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Option<Algorithm>,
    pub(crate) material: Material,
}

/// All configured keys. `Debug` shows kinds and ids, never key bytes.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (k.material.kind(), k.kid.as_deref(), k.alg)))
            .finish()
    }
}

impl KeySet {
    /// Builds the set from an optional shared secret and an optional JWK Set, pushing a
    /// message per invalid key.
    pub(crate) fn build(secret: Option<&Secret>, jwks: Option<&Value>, problems: &mut Vec<String>) -> Self {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            keys.push(Key {
                kid: None,
                alg: None,
                material: Material::Hmac(secret.expose().to_vec()),
            });
        }
        if let Some(jwks) = jwks {
            match jwks.get("keys").and_then(Value::as_array) {
                Some(list) => {
                    for (i, jwk) in list.iter().enumerate() {
                        match parse_jwk(jwk) {
                            Ok(key) => keys.push(key),
                            Err(e) => problems.push(format!("jwt.jwks.keys[{i}]: {e}")),
                        }
                    }
                }
                None => problems.push("jwt.jwks: must be a JWK Set object {\"keys\": [...]}".into()),
            }
        }
        if keys.is_empty() && problems.is_empty() {
            problems.push("jwt: configure hmac_secret or jwks (no verification key)".into());
        }
        Self { keys }
    }

    /// Keys that may verify a token with this `alg` and optional `kid`. With a `kid`,
    /// only keys carrying that id are tried.
    pub(crate) fn candidates<'a>(&'a self, alg: Algorithm, kid: Option<&'a str>) -> impl Iterator<Item = &'a Key> {
        self.keys.iter().filter(move |k| {
            k.material.admits(alg)
                && k.alg.is_none_or(|a| a == alg)
                && match kid {
                    Some(kid) => k.kid.as_deref() == Some(kid),
                    None => true,
                }
        })
    }

    /// Number of keys configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is configured (never the case for a validated config).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn field<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string member {name:?}"))
}

fn b64(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(field(jwk, name)?)
        .map_err(|e| format!("{name:?} is not base64url: {e}"))
}

fn parse_jwk(jwk: &Value) -> Result<Key, String> {
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Err("\"use\" must be \"sig\"".into());
        }
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(v) => Some(v.as_str().ok_or("\"kid\" must be a string")?.to_owned()),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(v) => {
            let name = v.as_str().ok_or("\"alg\" must be a string")?;
            Some(Algorithm::from_name(name).ok_or_else(|| format!("unsupported alg {name:?}"))?)
        }
    };
    let material = match field(jwk, "kty")? {
        "oct" => {
            let k = b64(jwk, "k")?;
            if k.len() < crate::config::MIN_SECRET_BYTES {
                return Err(format!(
                    "oct key shorter than {} bytes",
                    crate::config::MIN_SECRET_BYTES
                ));
            }
            Material::Hmac(k)
        }
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&b64(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&b64(jwk, "e")?);
            if n.bits() < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {} bits is below {MIN_RSA_BITS}", n.bits()));
            }
            let key = rsa::RsaPublicKey::new(n, e).map_err(|e| format!("bad RSA key: {e}"))?;
            Material::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::new(key)))
        }
        "EC" => {
            if field(jwk, "crv")? != "P-256" {
                return Err("only EC curve P-256 is supported".into());
            }
            let (x, y) = (b64(jwk, "x")?, b64(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let mut sec1 = vec![0x04];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            Material::EcP256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "point is not on P-256")?)
        }
        "OKP" => {
            if field(jwk, "crv")? != "Ed25519" {
                return Err("only OKP curve Ed25519 is supported".into());
            }
            let x: [u8; 32] = b64(jwk, "x")?.try_into().map_err(|_| "Ed25519 key must be 32 bytes")?;
            Material::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "invalid Ed25519 point")?)
        }
        other => return Err(format!("unsupported kty {other:?}")),
    };
    if let Some(alg) = alg {
        if !material.admits(alg) {
            return Err(format!("alg {alg:?} does not fit a {} key", material.kind()));
        }
    }
    Ok(Key { kid, alg, material })
}
