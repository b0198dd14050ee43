//! What all VMs of one plugin share, as in Envoy's cpp-host: key-value shared data with
//! CAS versions, shared queues and metrics. Per-VM state lives in [`super::state`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use sse_policy::slots;

/// ABI status codes (`proxy_status_t`).
pub(crate) mod status {
    pub(crate) const OK: i32 = 0;
    pub(crate) const NOT_FOUND: i32 = 1;
    pub(crate) const BAD_ARGUMENT: i32 = 2;
    pub(crate) const INVALID_MEMORY_ACCESS: i32 = 6;
    pub(crate) const EMPTY: i32 = 7;
    pub(crate) const CAS_MISMATCH: i32 = 8;
    pub(crate) const UNIMPLEMENTED: i32 = 12;
}

/// Shared data: values with a CAS version. The semantics are cpp-host's, which filters
/// are written against: a CAS of 0 (or a new key) writes unconditionally; otherwise the
/// CAS must match. Versions come from one counter and are never 0.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    inner: Mutex<SharedInner>,
}

#[derive(Debug, Default)]
struct SharedInner {
    next_cas: u32,
    values: HashMap<Vec<u8>, (Vec<u8>, u32)>,
}

/// Keys and values above these sizes are refused (a module cannot grow host memory
/// without bound through one call).
pub(crate) const MAX_SHARED_KEY: usize = 4096;
pub(crate) const MAX_SHARED_VALUE: usize = 1 << 20;
const MAX_SHARED_ENTRIES: usize = 100_000;

impl SharedData {
    pub(crate) fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.inner.lock().values.get(key).cloned()
    }

    /// Returns an ABI status.
    pub(crate) fn set(&self, key: &[u8], value: &[u8], cas: u32) -> i32 {
        let mut inner = self.inner.lock();
        if let Some((_, current)) = inner.values.get(key) {
            if cas != 0 && cas != *current {
                return status::CAS_MISMATCH;
            }
        } else if inner.values.len() >= MAX_SHARED_ENTRIES {
            return status::BAD_ARGUMENT;
        }
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        let version = inner.next_cas;
        inner.values.insert(key.to_vec(), (value.to_vec(), version));
        status::OK
    }

    /// Gives back one of `company`'s connection slots in our filter's counters
    /// (`sse_policy::slots`), for a stream whose filter context died with its VM and so
    /// will never run `on_log` to give it back itself. Does nothing for a plugin that keeps
    /// no such counters. The read and the write happen under one lock: no lost update.
    pub(crate) fn give_back_slot(&self, company: &str) {
        let key = slots::shard_key(company);
        let mut inner = self.inner.lock();
        let Some((shard, _)) = inner.values.get(key.as_bytes()) else {
            return;
        };
        let next = slots::give_back(shard, company);
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        let version = inner.next_cas;
        inner.values.insert(key.into_bytes(), (next, version));
    }
}

/// Shared queues: named FIFOs, registered by one VM, fed by any.
#[derive(Debug, Default)]
pub(crate) struct SharedQueues {
    inner: Mutex<QueuesInner>,
}

#[derive(Debug, Default)]
struct QueuesInner {
    by_name: HashMap<Vec<u8>, u32>,
    queues: Vec<VecDeque<Vec<u8>>>,
}

const MAX_QUEUE_LEN: usize = 10_000;

impl SharedQueues {
    pub(crate) fn register(&self, name: &[u8]) -> u32 {
        let mut q = self.inner.lock();
        if let Some(id) = q.by_name.get(name) {
            return *id;
        }
        q.queues.push(VecDeque::new());
        let id = q.queues.len() as u32; // ids start at 1
        q.by_name.insert(name.to_vec(), id);
        id
    }

    pub(crate) fn resolve(&self, name: &[u8]) -> Option<u32> {
        self.inner.lock().by_name.get(name).copied()
    }

    pub(crate) fn enqueue(&self, id: u32, value: &[u8]) -> i32 {
        let mut q = self.inner.lock();
        match q.queues.get_mut((id as usize).wrapping_sub(1)) {
            Some(queue) if queue.len() < MAX_QUEUE_LEN => {
                queue.push_back(value.to_vec());
                status::OK
            }
            Some(_) => status::BAD_ARGUMENT,
            None => status::NOT_FOUND,
        }
    }

    pub(crate) fn dequeue(&self, id: u32) -> Result<Vec<u8>, i32> {
        let mut q = self.inner.lock();
        match q.queues.get_mut((id as usize).wrapping_sub(1)) {
            Some(queue) => queue.pop_front().ok_or(status::EMPTY),
            None => Err(status::NOT_FOUND),
        }
    }
}

/// Kinds of plugin metrics (`proxy_metric_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Records values (exported as the last value recorded).
    Histogram,
}

/// One plugin metric as exported on `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricSample {
    /// The name the plugin defined.
    pub name: String,
    /// Its kind.
    pub kind: MetricKind,
    /// Its current value.
    pub value: i64,
}

/// Metrics defined by the plugin's VMs; the same name gives the same id in every VM,
/// so counts add up across workers.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Vec<(String, MetricKind, std::sync::Arc<AtomicI64>)>>,
}

const MAX_METRICS: usize = 1000;

impl Metrics {
    pub(crate) fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let mut m = self.inner.lock();
        if let Some(i) = m.iter().position(|(n, k, _)| n == name && *k == kind) {
            return Some(i as u32);
        }
        if m.len() >= MAX_METRICS {
            return None;
        }
        m.push((name.to_owned(), kind, Default::default()));
        Some(m.len() as u32 - 1)
    }

    pub(crate) fn update(&self, id: u32, f: impl FnOnce(MetricKind, &AtomicI64) -> i32) -> i32 {
        let cell = self.inner.lock().get(id as usize).map(|(_, k, v)| (*k, v.clone()));
        match cell {
            Some((kind, value)) => f(kind, &value),
            None => status::NOT_FOUND,
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<i64> {
        self.inner
            .lock()
            .get(id as usize)
            .map(|(_, _, v)| v.load(Ordering::Relaxed))
    }

    pub(crate) fn samples(&self) -> Vec<MetricSample> {
        self.inner
            .lock()
            .iter()
            .map(|(name, kind, v)| MetricSample {
                name: name.clone(),
                kind: *kind,
                value: v.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_semantics_match_cpp_host() {
        let d = SharedData::default();
        assert_eq!(d.set(b"k", b"1", 0), status::OK);
        let (_, v1) = d.get(b"k").unwrap();
        assert_ne!(v1, 0);
        assert_eq!(d.set(b"k", b"2", v1 + 1), status::CAS_MISMATCH);
        assert_eq!(d.set(b"k", b"2", v1), status::OK);
        assert_eq!(d.set(b"k", b"3", v1), status::CAS_MISMATCH, "the version moved on");
        assert_eq!(d.set(b"k", b"4", 0), status::OK, "cas 0 overwrites");
        assert_eq!(d.get(b"k").unwrap().0, b"4");
    }

    #[test]
    fn queues_are_fifo_and_metrics_dedupe_by_name() {
        let q = SharedQueues::default();
        let id = q.register(b"q");
        assert_eq!(q.register(b"q"), id);
        assert_eq!(q.dequeue(id), Err(status::EMPTY));
        q.enqueue(id, b"a");
        q.enqueue(id, b"b");
        assert_eq!(q.dequeue(id).unwrap(), b"a");
        let m = Metrics::default();
        assert_eq!(m.define(MetricKind::Counter, "x"), m.define(MetricKind::Counter, "x"));
    }
}
