//! Connection limits as RAII slots: a slot lives exactly as long as the stream that
//! holds it (it is moved into the response body), so counts cannot leak when clients
//! vanish mid-stream.
//!
//! Why the per-company limit is counted here and in the filter too: the filter's count
//! (proxy-wasm shared data) refuses excess streams at the edge, before they cost the
//! host anything, but it is only as exact as the edge: several Envoys each count their
//! own, and a host reachable without the edge (edge mode `native`, or a misrouted
//! client) has no filter at all. The hub's count is the one the host can rely on for
//! its own memory; with Redis it is also the node's truth the cluster-wide count is
//! rebuilt from. The two use the same limit from the same policy.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The company (the key) is at its limit.
    #[error("too many connections for this company")]
    Company,
    /// The host is at its total limit.
    #[error("too many connections on this host")]
    Total,
}

/// Counters with a limit per key and one in all: per company and per host for streams
/// (the default key), per peer address and per host for connections still sending their
/// first request (`http::server`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits<K = String> {
    inner: Arc<Inner<K>>,
}

#[derive(Debug)]
struct Inner<K> {
    per_key: u32,
    /// Keys with a limit of their own (companies in a tier).
    overrides: HashMap<K, u32>,
    total: u32,
    counts: Mutex<Counts<K>>,
}

#[derive(Debug)]
struct Counts<K> {
    total: u32,
    by_key: HashMap<K, u32>,
}

/// A held slot; dropping it returns the slot.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq = String> {
    inner: Arc<Inner<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> ConnectionLimits<K> {
    /// Limits of `per_key` slots per key and `total` slots in all.
    pub fn new(per_key: u32, total: u32) -> Self {
        Self::with_overrides(per_key, HashMap::new(), total)
    }

    /// [`ConnectionLimits::new`], with keys whose limit is their own.
    pub fn with_overrides(per_key: u32, overrides: HashMap<K, u32>, total: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_key,
                overrides,
                total,
                counts: Mutex::new(Counts {
                    total: 0,
                    by_key: HashMap::new(),
                }),
            }),
        }
    }

    /// Takes a slot for `key`, or says which limit is reached.
    pub fn acquire<Q>(&self, key: &Q) -> Result<Slot<K>, LimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut c = self.inner.counts.lock();
        if c.total >= self.inner.total {
            return Err(LimitError::Total);
        }
        let n = c.by_key.get(key).copied().unwrap_or(0);
        let limit = self.inner.overrides.get(key).copied().unwrap_or(self.inner.per_key);
        if n >= limit {
            return Err(LimitError::Company);
        }
        let key = key.to_owned();
        c.total += 1;
        c.by_key.insert(key.clone(), n + 1);
        Ok(Slot {
            inner: self.inner.clone(),
            key,
        })
    }

    /// Slots held now.
    pub fn total(&self) -> u32 {
        self.inner.counts.lock().total
    }

    /// Slots held now by `key`.
    pub fn count<Q>(&self, key: &Q) -> u32
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.counts.lock().by_key.get(key).copied().unwrap_or(0)
    }

    /// Slots held now, per key.
    pub fn by_key(&self) -> HashMap<K, u32> {
        self.inner.counts.lock().by_key.clone()
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut c = self.inner.counts.lock();
        c.total -= 1;
        if let Some(n) = c.by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.by_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_return_on_drop() {
        let limits = ConnectionLimits::new(2, 3);
        let a1 = limits.acquire("a").unwrap();
        let _a2 = limits.acquire("a").unwrap();
        assert_eq!(limits.acquire("a").unwrap_err(), LimitError::Company);
        let _b = limits.acquire("b").unwrap();
        assert_eq!(limits.acquire("c").unwrap_err(), LimitError::Total);
        drop(a1);
        let _a3 = limits.acquire("a").unwrap();
        assert_eq!(limits.total(), 3);
    }

    #[test]
    fn any_key_works_the_same() {
        let peers = ConnectionLimits::<std::net::IpAddr>::new(2, 4);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = peers.acquire(&a).unwrap();
        let _a2 = peers.acquire(&a).unwrap();
        assert_eq!(peers.acquire(&a).unwrap_err(), LimitError::Company, "a's share is full");
        let _b = [peers.acquire(&b).unwrap(), peers.acquire(&b).unwrap()];
        assert_eq!(
            peers.acquire(&"10.0.0.3".parse().unwrap()).unwrap_err(),
            LimitError::Total
        );
        drop(a1);
        assert!(peers.acquire(&a).is_ok(), "a place freed is a place again");
    }
}
