//! Idempotency keys of publishes (`Idempotency-Key`): a publish retried with the same key
//! (its response was lost, it timed out) is stored once and answered with the first
//! publish's IDs. The key is scoped to the company, so one tenant's keys can neither see
//! nor evict another's, and bound to the request body by its SHA-256, so a key reused
//! for other events is refused instead of answered with the wrong IDs.
//!
//! This is the memory backend's record (the Redis backend keeps the same record in
//! Redis, written by the publish script itself). Each company keeps at most
//! `keys_per_company` keys for `ttl`; past that its oldest key goes first.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

/// A publish's idempotency key and the digest of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    digest: [u8; 32],
}

/// The key is not 1-255 visible ASCII characters.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Idempotency-Key must be 1-{} visible ASCII characters", IdempotencyKey::MAX_LEN)]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// Longest key accepted (a UUID is 36).
    pub const MAX_LEN: usize = 255;

    /// The key `key` for a publish whose body is `body`.
    pub fn new(key: &[u8], body: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let visible = |b: &u8| (0x21..=0x7e).contains(b);
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.iter().all(visible) {
            return Err(InvalidIdempotencyKey);
        }
        let key = String::from_utf8(key.to_vec()).map_err(|_| InvalidIdempotencyKey)?;
        Ok(Self {
            key,
            digest: Sha256::digest(body).into(),
        })
    }

    /// The key as the client sent it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// SHA-256 of the body the key came with.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// What the record says about a publish with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen (or expired): publish, then record.
    New,
    /// Published before with the same body: these are its IDs.
    Replay(Vec<String>),
    /// Published before with another body.
    Reused,
}

/// The memory backend's record of keys, per company.
#[derive(Debug)]
pub(crate) struct IdempotencyStore {
    ttl: Duration,
    keys_per_company: usize,
    companies: Mutex<HashMap<String, Keys>>,
}

#[derive(Debug, Default)]
struct Keys {
    entries: HashMap<String, Entry>,
    /// Keys in the order they were recorded (so also of expiry: the TTL is one for all).
    order: VecDeque<(String, Instant)>,
}

#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    ids: Vec<String>,
    at: Instant,
}

impl IdempotencyStore {
    /// Keys live `ttl`; a company keeps at most `keys_per_company` (at least one).
    pub(crate) fn new(ttl: Duration, keys_per_company: usize) -> Self {
        Self {
            ttl,
            keys_per_company: keys_per_company.max(1),
            companies: Mutex::new(HashMap::new()),
        }
    }

    /// What `key` of `company` was used for, as of `now`.
    pub(crate) fn check(&self, company: &str, key: &IdempotencyKey, now: Instant) -> Seen {
        let companies = self.companies.lock();
        let Some(entry) = companies.get(company).and_then(|k| k.entries.get(key.key())) else {
            return Seen::New;
        };
        if now.duration_since(entry.at) >= self.ttl {
            Seen::New
        } else if entry.digest == *key.digest() {
            Seen::Replay(entry.ids.clone())
        } else {
            Seen::Reused
        }
    }

    /// Records that `key` of `company` published `ids` at `now`.
    pub(crate) fn record(&self, company: &str, key: &IdempotencyKey, ids: &[String], now: Instant) {
        let mut companies = self.companies.lock();
        let keys = companies.entry(company.to_owned()).or_default();
        keys.prune(now, self.ttl);
        while keys.entries.len() >= self.keys_per_company {
            let Some((oldest, at)) = keys.order.pop_front() else {
                break;
            };
            keys.remove_if_recorded_at(&oldest, at);
        }
        keys.entries.insert(
            key.key().to_owned(),
            Entry {
                digest: *key.digest(),
                ids: ids.to_vec(),
                at: now,
            },
        );
        keys.order.push_back((key.key().to_owned(), now));
    }

    /// Drops expired keys, and companies left without any (the sweep calls this).
    pub(crate) fn prune(&self, now: Instant) {
        let mut companies = self.companies.lock();
        companies.retain(|_, keys| {
            keys.prune(now, self.ttl);
            !keys.entries.is_empty()
        });
    }
}

impl Keys {
    fn prune(&mut self, now: Instant, ttl: Duration) {
        while let Some((key, at)) = self.order.front() {
            if now.duration_since(*at) < ttl {
                break;
            }
            let (key, at) = (key.clone(), *at);
            self.order.pop_front();
            self.remove_if_recorded_at(&key, at);
        }
        if self.order.is_empty() {
            self.order = VecDeque::new(); // give a burst's memory back
        }
    }

    /// Removes `key` unless it was recorded again after `at` (a key reused once expired
    /// has two places in `order`; only the latest one owns the entry).
    fn remove_if_recorded_at(&mut self, key: &str, at: Instant) {
        if self.entries.get(key).is_some_and(|e| e.at == at) {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, body: &str) -> IdempotencyKey {
        IdempotencyKey::new(k.as_bytes(), body.as_bytes()).unwrap()
    }

    #[test]
    fn keys_must_be_short_visible_ascii() {
        for bad in [&b""[..], b"has space", b"tab\t", "é".as_bytes(), &[b'a'; 256]] {
            assert!(IdempotencyKey::new(bad, b"{}").is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::new(&[b'a'; 255], b"{}").is_ok());
    }

    #[test]
    fn a_key_replays_its_ids_for_the_same_body_and_refuses_another() {
        let store = IdempotencyStore::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        assert_eq!(store.check("acme", &key("k1", "a"), now), Seen::New);
        store.record("acme", &key("k1", "a"), &["1-1".into()], now);
        assert_eq!(
            store.check("acme", &key("k1", "a"), now),
            Seen::Replay(vec!["1-1".into()])
        );
        assert_eq!(store.check("acme", &key("k1", "b"), now), Seen::Reused);
        assert_eq!(
            store.check("globex", &key("k1", "a"), now),
            Seen::New,
            "scoped to the company"
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(store.check("acme", &key("k1", "a"), later), Seen::New, "expired");
    }

    #[test]
    fn a_company_past_its_cap_forgets_its_oldest_key_only() {
        let store = IdempotencyStore::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        store.record("globex", &key("g", "x"), &["9-9".into()], now);
        for (i, k) in ["k1", "k2", "k3"].into_iter().enumerate() {
            store.record(
                "acme",
                &key(k, "a"),
                &[format!("1-{i}")],
                now + Duration::from_secs(i as u64),
            );
        }
        let t = now + Duration::from_secs(3);
        assert_eq!(store.check("acme", &key("k1", "a"), t), Seen::New);
        assert_eq!(
            store.check("acme", &key("k3", "a"), t),
            Seen::Replay(vec!["1-2".into()])
        );
        assert_eq!(
            store.check("globex", &key("g", "x"), t),
            Seen::Replay(vec!["9-9".into()])
        );
        store.prune(now + Duration::from_secs(70));
        assert!(store.companies.lock().is_empty());
    }

    #[test]
    fn a_key_recorded_again_after_expiry_survives_the_old_order_entry() {
        let store = IdempotencyStore::new(Duration::from_secs(10), 5);
        let now = Instant::now();
        store.record("acme", &key("k", "a"), &["1-1".into()], now);
        let again = now + Duration::from_secs(10);
        assert_eq!(store.check("acme", &key("k", "a"), again), Seen::New);
        store.record("acme", &key("k", "b"), &["2-1".into()], again);
        store.prune(again + Duration::from_secs(1));
        assert_eq!(
            store.check("acme", &key("k", "b"), again + Duration::from_secs(1)),
            Seen::Replay(vec!["2-1".into()])
        );
    }
}
