//! Per-company connection slots in proxy-wasm shared data, exact across Envoy workers.
//!
//! Every VM (one per worker) sees the same shared data, but the ABI has no atomic
//! increment and no atomic create. So the shard keys are created before traffic
//! (`seed`, only where absent: configure runs again on reloads and in a canary VM and
//! must never reset live counts), and every update is a compare-and-swap on an existing
//! key, retried on a CAS mismatch.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use sse_policy::slots::{self, Take};

/// Attempts before giving up on a contended shard (then the request fails closed).
const MAX_CAS_ATTEMPTS: u32 = 64;

/// Outcome of taking a slot.
pub(crate) enum Acquire {
    Taken,
    Full,
    /// Shared data misbehaved or stayed contended: fail closed.
    Failed,
}

/// Creates every shard key that does not exist yet.
pub(crate) fn seed() {
    for key in slots::all_shard_keys() {
        if let Ok((None, _)) = hostcalls::get_shared_data(&key) {
            let _ = hostcalls::set_shared_data(&key, Some(b""), None);
        }
    }
}

/// Takes one of `company`'s `limit` slots.
pub(crate) fn acquire(company: &str, limit: u32) -> Acquire {
    let key = slots::shard_key(company);
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Ok((value, cas)) = hostcalls::get_shared_data(&key) else {
            return Acquire::Failed;
        };
        let next = match slots::take(value.as_deref().unwrap_or_default(), company, limit) {
            Take::Full => return Acquire::Full,
            Take::Write(next) => next,
        };
        // With no CAS (key missing, seeding failed) a write would be an unconditional
        // overwrite that can lose counts: refuse rather than guess.
        let Some(cas) = cas else {
            return Acquire::Failed;
        };
        match hostcalls::set_shared_data(&key, Some(&next), Some(cas)) {
            Ok(()) => return Acquire::Taken,
            Err(Status::CasMismatch) => continue,
            Err(_) => return Acquire::Failed,
        }
    }
    Acquire::Failed
}

/// Returns one of `company`'s slots. Retries until written: a lost decrement would leak
/// a slot forever.
pub(crate) fn release(company: &str) {
    let key = slots::shard_key(company);
    for _ in 0..MAX_CAS_ATTEMPTS * 16 {
        let Ok((value, Some(cas))) = hostcalls::get_shared_data(&key) else {
            break;
        };
        let next = slots::give_back(value.as_deref().unwrap_or_default(), company);
        match hostcalls::set_shared_data(&key, Some(&next), Some(cas)) {
            Err(Status::CasMismatch) => continue,
            _ => return,
        }
    }
    log::error!("could not return a connection slot for company {company}: count may be high until restart");
}
