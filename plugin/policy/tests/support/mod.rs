//! Test keys and token minting for every supported algorithm.
#![allow(dead_code, unreachable_pub, missing_docs)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sse_policy::{PolicyConfig, Secret};

pub const HMAC_SECRET: &str = "test-hmac-secret-that-is-32-bytes-long!!";
pub const EDGE_SECRET: &str = "test-edge-secret-that-is-32-bytes-long!!";
pub const NOW: u64 = 1_800_000_000;

const RSA_PEM: &str = include_str!("../fixtures/rsa-pkcs8.pem");
const EC_PEM: &str = include_str!("../fixtures/ec-pkcs8.pem");
const ED_PEM: &str = include_str!("../fixtures/ed25519.pem");

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn rsa_key() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap()
}

pub fn ec_key() -> p256::ecdsa::SigningKey {
    use p256::pkcs8::DecodePrivateKey;
    p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PEM).unwrap()
}

pub fn ed_key() -> ed25519_dalek::SigningKey {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_pem(ED_PEM).unwrap()
}

/// The public JWK Set of the fixture keys, with kids "rsa1", "ec1", "ed1".
pub fn jwks() -> Value {
    use rsa::traits::PublicKeyParts;
    let rsa = rsa_key().to_public_key();
    let ec = ec_key().verifying_key().to_encoded_point(false);
    let ed = ed_key().verifying_key();
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig", "n": b64(rsa.n().to_bytes_be()), "e": b64(rsa.e().to_bytes_be())},
        {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(ec.x().unwrap()), "y": b64(ec.y().unwrap())},
        {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64(ed.as_bytes())},
    ]})
}

/// A config with every key, the seed's channels plus a role-restricted one.
pub fn config_json() -> Value {
    json!({
        "tokens": {"authorization_header": true, "cookie": "sse_token", "query_param": "access_token"},
        "jwt": {"issuers": ["https://idp.test"], "audiences": ["sse"], "leeway_secs": 30,
                "hmac_secret": HMAC_SECRET, "jwks": jwks()},
        "channels": [
            {"name": "dashboard-updates"}, {"name": "evidence-updates"}, {"name": "report-updates"},
            {"name": "audit-log", "roles": ["AUDITOR"]}
        ],
        "limits": {"max_connections_per_company": 3, "max_channels_per_stream": 3},
        "routes": {"dev_mode": false},
        "edge": {"secret": EDGE_SECRET},
        "cors": {"allowed_origins": ["https://app.test"]}
    })
}

pub fn config() -> PolicyConfig {
    PolicyConfig::from_json(&config_json().to_string()).unwrap()
}

pub fn claims(company: &str, role: &str) -> Value {
    json!({"sub": "user-1", "company_id": company, "role": role, "iss": "https://idp.test",
           "aud": "sse", "iat": NOW - 10, "exp": NOW + 600})
}

pub fn sign(alg: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = raw_signature(alg, input.as_bytes());
    format!("{input}.{}", b64(sig))
}

pub fn raw_signature(alg: &str, input: &[u8]) -> Vec<u8> {
    use rsa::signature::{SignatureEncoding, Signer};
    match alg {
        "HS256" => hmac_sign::<hmac::Hmac<sha2::Sha256>>(HMAC_SECRET.as_bytes(), input),
        "HS384" => hmac_sign::<hmac::Hmac<sha2::Sha384>>(HMAC_SECRET.as_bytes(), input),
        "HS512" => hmac_sign::<hmac::Hmac<sha2::Sha512>>(HMAC_SECRET.as_bytes(), input),
        "RS256" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key())
            .sign(input)
            .to_vec(),
        "ES256" => {
            let sig: p256::ecdsa::Signature = ec_key().sign(input);
            sig.to_bytes().to_vec()
        }
        "EdDSA" => ed_key().sign(input).to_bytes().to_vec(),
        other => panic!("no signer for {other}"),
    }
}

pub fn hmac_sign<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

pub fn hs256(claims: &Value) -> String {
    sse_policy::mint::hs256(&Secret::new(HMAC_SECRET), claims)
}
