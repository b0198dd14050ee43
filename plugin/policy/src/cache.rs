//! A cache of verified tokens: reconnects and publishers send the same token again and
//! again, and verifying a signature is most of what a decision costs with public keys
//! (ES256 or RS256 from an identity provider: hundreds of µs; `edge-bench`). Envoy's
//! `jwt_authn` has the same idea (`jwt_cache_config`).
//!
//! What keeps it safe:
//! - the key is the whole token: a token that differs in any byte is verified;
//! - an entry is used only while `now` is before the token's own `exp` (no leeway), so
//!   the cache never accepts what verification would refuse as expired; tokens without
//!   `exp` are not cached;
//! - nor when `now` is before the moment it was verified (a clock stepped back): then
//!   `nbf`/`iat` might not hold, and the token is verified again;
//! - only successful verifications are cached (a forged token costs its full check every
//!   time, as before);
//! - one cache belongs to one configuration (its keys, issuers, audiences): the filter
//!   makes a new one with each configuration, the host holds one per process.
//!
//! Bounded: at most `capacity` tokens, kept in two generations; when the newer one fills
//! up, the older one is dropped (a token in use moves to the newer one when it is read),
//! so memory is bounded and recently used tokens stay.

use std::collections::HashMap;

use crate::config::JwtRules;
use crate::jwt::{self, Claims, TokenError};

/// Verified tokens and their claims.
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    newer: HashMap<Box<str>, Entry>,
    older: HashMap<Box<str>, Entry>,
}

/// A verified token's claims, and when it was verified.
#[derive(Debug, Clone)]
struct Entry {
    claims: Claims,
    verified_at: u64,
}

impl Entry {
    /// Usable at `now`: between its verification and its `exp`.
    fn usable(&self, now: u64) -> bool {
        self.verified_at <= now && self.claims.expires_at.is_some_and(|exp| now < exp)
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0: nothing is cached).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            newer: HashMap::new(),
            older: HashMap::new(),
        }
    }

    /// The claims of `token` under `rules` at `now`: from the cache while the token is
    /// unexpired, else by [`jwt::verify`] (and cached when it passes).
    pub fn verify(&mut self, token: &str, rules: &JwtRules, now: u64) -> Result<Claims, TokenError> {
        if let Some(claims) = self.lookup(token, now) {
            return Ok(claims);
        }
        let claims = jwt::verify(token, rules, now)?;
        self.store(token, &claims, now);
        Ok(claims)
    }

    /// The claims of `token` if it is cached and unexpired at `now`. With [`store`], for a
    /// cache shared between threads: look up under the lock, verify outside it.
    ///
    /// [`store`]: TokenCache::store
    pub fn lookup(&mut self, token: &str, now: u64) -> Option<Claims> {
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return None; // never cached: not even hashed
        }
        self.fresh(token, now)
    }

    /// Caches `claims`, which [`jwt::verify`] just returned for `token` at `now` (tokens
    /// without `exp`, already expired or over the size limit are not kept).
    pub fn store(&mut self, token: &str, claims: &Claims, now: u64) {
        let entry = Entry {
            claims: claims.clone(),
            verified_at: now,
        };
        if self.capacity > 0 && token.len() <= jwt::MAX_TOKEN_BYTES && entry.usable(now) {
            self.insert_entry(token.into(), entry);
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A cached entry usable at `now` (moved to the newer generation); others are removed.
    fn fresh(&mut self, token: &str, now: u64) -> Option<Claims> {
        if let Some(e) = self.newer.get(token) {
            if e.usable(now) {
                return Some(e.claims.clone());
            }
            self.newer.remove(token);
            return None;
        }
        let (key, entry) = self.older.remove_entry(token)?;
        if !entry.usable(now) {
            return None;
        }
        let claims = entry.claims.clone();
        self.insert_entry(key, entry);
        Some(claims)
    }

    fn insert_entry(&mut self, token: Box<str>, entry: Entry) {
        // Each generation holds at most half: `capacity` in all.
        let half = self.capacity / 2;
        if half == 0 {
            self.older.clear();
            self.newer.clear();
        } else if self.newer.len() >= half {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(token, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::TokenCache;
    use crate::config::PolicyConfig;
    use crate::jwt::TokenError;
    use crate::mint;
    use crate::secret::Secret;
    use serde_json::json;

    const SECRET: &str = "cache-test-secret-that-is-32-bytes!!";

    fn config() -> PolicyConfig {
        PolicyConfig::from_json(&json!({"jwt": {"hmac_secret": SECRET}, "edge": {"secret": SECRET}}).to_string())
            .unwrap()
    }

    fn token(sub: &str, exp: u64) -> String {
        mint::hs256(
            &Secret::new(SECRET),
            &json!({"sub": sub, "company_id": "acme", "role": "VIEWER", "exp": exp}),
        )
    }

    #[test]
    fn a_cached_token_is_never_accepted_past_its_exp() {
        let rules = &config().jwt;
        let mut cache = TokenCache::new(8);
        let t = token("a", 1_000);
        assert_eq!(cache.verify(&t, rules, 900).unwrap().subject, "a");
        assert_eq!(cache.len(), 1);
        assert!(cache.verify(&t, rules, 999).is_ok(), "from the cache");
        // Verification has leeway past exp; the cache has none, and then verifies: refused.
        assert_eq!(cache.verify(&t, rules, 1_000 + 3_600), Err(TokenError::Expired));
        assert!(cache.is_empty(), "the expired entry is gone");
    }

    #[test]
    fn a_clock_stepped_back_verifies_again() {
        let rules = &config().jwt;
        let mut cache = TokenCache::new(8);
        let claims = json!({"sub": "a", "company_id": "acme", "nbf": 500, "exp": 1_000});
        let t = mint::hs256(&Secret::new(SECRET), &claims);
        cache.verify(&t, rules, 600).unwrap();
        assert!(cache.lookup(&t, 700).is_some());
        assert!(
            cache.lookup(&t, 550).is_none(),
            "before its verification: not from the cache"
        );
        assert_eq!(
            cache.verify(&t, rules, 0),
            Err(TokenError::NotYetValid),
            "a clock at 0 fails closed"
        );
    }

    #[test]
    fn forged_or_altered_tokens_are_verified_and_never_cached() {
        let rules = &config().jwt;
        let mut cache = TokenCache::new(8);
        let t = token("a", 1_000);
        cache.verify(&t, rules, 10).unwrap();
        let mut altered = t.clone();
        altered.pop();
        altered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(cache.verify(&altered, rules, 10), Err(TokenError::BadSignature));
        let forged = mint::hs256(
            &Secret::new("another-secret-that-is-32-bytes-long!"),
            &json!({"sub": "x", "exp": 1_000}),
        );
        assert_eq!(cache.verify(&forged, rules, 10), Err(TokenError::BadSignature));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn tokens_without_exp_are_not_cached_and_the_size_is_bounded() {
        let mut cfg = config();
        cfg.jwt.require_exp = false;
        let mut cache = TokenCache::new(4);
        let no_exp = mint::hs256(&Secret::new(SECRET), &json!({"sub": "n", "company_id": "acme"}));
        cache.verify(&no_exp, &cfg.jwt, 10).unwrap();
        assert!(cache.is_empty());
        for i in 0..100 {
            cache.verify(&token(&format!("u{i}"), 1_000), &cfg.jwt, 10).unwrap();
            assert!(cache.len() <= 4, "{} entries", cache.len());
        }
        // A token in use survives the turnover of others.
        let hot = token("hot", 1_000);
        cache.verify(&hot, &cfg.jwt, 10).unwrap();
        for i in 0..10 {
            cache.verify(&token(&format!("v{i}"), 1_000), &cfg.jwt, 10).unwrap();
            cache.verify(&hot, &cfg.jwt, 10).unwrap();
            assert!(cache.fresh(&hot, 10).is_some());
        }
        assert_eq!(TokenCache::new(0).verify(&hot, &cfg.jwt, 10).unwrap().subject, "hot");
    }
}
