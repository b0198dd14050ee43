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

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The company is at its limit.
    #[error("too many connections for this company")]
    Company,
    /// The host is at its total limit.
    #[error("too many connections on this host")]
    Total,
}

/// Per-company and total connection counters.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_company: u32,
    total: u32,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    by_company: HashMap<String, u32>,
}

/// A held connection slot; dropping it returns the slot.
#[derive(Debug)]
pub struct Slot {
    inner: Arc<Inner>,
    company: String,
}

impl ConnectionLimits {
    /// Limits of `per_company` streams per company and `total` streams in all.
    pub fn new(per_company: u32, total: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_company,
                total,
                counts: Mutex::default(),
            }),
        }
    }

    /// Takes a slot for `company`, or says which limit is reached.
    pub fn acquire(&self, company: &str) -> Result<Slot, LimitError> {
        let mut c = self.inner.counts.lock();
        if c.total >= self.inner.total {
            return Err(LimitError::Total);
        }
        let n = c.by_company.get(company).copied().unwrap_or(0);
        if n >= self.inner.per_company {
            return Err(LimitError::Company);
        }
        c.total += 1;
        c.by_company.insert(company.to_owned(), n + 1);
        Ok(Slot {
            inner: self.inner.clone(),
            company: company.to_owned(),
        })
    }

    /// Streams open now.
    pub fn total(&self) -> u32 {
        self.inner.counts.lock().total
    }

    /// Streams open now, per company.
    pub fn by_company(&self) -> HashMap<String, u32> {
        self.inner.counts.lock().by_company.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.inner.counts.lock();
        c.total -= 1;
        if let Some(n) = c.by_company.get_mut(&self.company) {
            *n -= 1;
            if *n == 0 {
                c.by_company.remove(&self.company);
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
}
