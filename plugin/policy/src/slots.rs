//! The per-company connection counters as the filter stores them in proxy-wasm shared
//! data. Pure encoding and bookkeeping; the CAS loop lives in the filter.
//!
//! Shared data has no atomic create (a CAS of 0 overwrites), so counters live in a fixed
//! set of shard keys that exist before traffic; every update after that is a CAS on an
//! existing key. A shard holds `company=count` lines for the companies hashed to it.

/// Number of shard keys. Contention is per shard; values stay tiny.
pub const SHARDS: u32 = 64;

/// The shared-data key of the shard that holds `company`'s counter.
pub fn shard_key(company: &str) -> String {
    // FNV-1a: stable across builds and VMs (unlike std's randomly keyed hasher).
    let mut h: u32 = 0x811c_9dc5;
    for b in company.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("sse-edge/conns/{}", h % SHARDS)
}

/// All shard keys, for seeding at configure time.
pub fn all_shard_keys() -> impl Iterator<Item = String> {
    (0..SHARDS).map(|i| format!("sse-edge/conns/{i}"))
}

/// Result of trying to take a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// New shard value to write with the CAS read alongside the old one.
    Write(Vec<u8>),
    /// The company is at `limit`.
    Full,
}

/// Count held by `company` in a shard value.
pub fn count(shard: &[u8], company: &str) -> u32 {
    entries(shard).find(|(c, _)| *c == company).map_or(0, |(_, n)| n)
}

/// The shard value after taking one slot for `company`, or `Full` at `limit`.
pub fn take(shard: &[u8], company: &str, limit: u32) -> Take {
    let n = count(shard, company);
    if n >= limit {
        Take::Full
    } else {
        Take::Write(with_count(shard, company, n + 1))
    }
}

/// The shard value after returning one slot of `company` (never below zero).
pub fn give_back(shard: &[u8], company: &str) -> Vec<u8> {
    with_count(shard, company, count(shard, company).saturating_sub(1))
}

fn entries(shard: &[u8]) -> impl Iterator<Item = (&str, u32)> {
    std::str::from_utf8(shard).unwrap_or("").lines().filter_map(|line| {
        let (c, n) = line.rsplit_once('=')?;
        Some((c, n.parse().ok()?))
    })
}

fn with_count(shard: &[u8], company: &str, n: u32) -> Vec<u8> {
    let mut out = String::new();
    for (c, m) in entries(shard).filter(|(c, _)| *c != company) {
        out.push_str(&format!("{c}={m}\n"));
    }
    if n > 0 {
        out.push_str(&format!("{company}={n}\n"));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_give_back_round_trip() {
        let mut shard = Vec::new();
        for _ in 0..3 {
            match take(&shard, "acme", 3) {
                Take::Write(v) => shard = v,
                Take::Full => panic!("full too early"),
            }
        }
        assert_eq!(take(&shard, "acme", 3), Take::Full);
        assert!(matches!(take(&shard, "globex", 3), Take::Write(_)));
        for _ in 0..3 {
            shard = give_back(&shard, "acme");
        }
        assert_eq!(count(&shard, "acme"), 0);
        assert!(shard.is_empty(), "an empty company leaves no entry");
        assert_eq!(give_back(&shard, "acme"), Vec::<u8>::new(), "never below zero");
    }

    #[test]
    fn companies_in_one_shard_do_not_interfere() {
        let shard = b"acme=2\nacme-corp=5\n".to_vec();
        assert_eq!(count(&shard, "acme"), 2);
        assert_eq!(count(&give_back(&shard, "acme"), "acme-corp"), 5);
    }

    #[test]
    fn shard_keys_are_stable_and_bounded() {
        assert_eq!(shard_key("acme"), shard_key("acme"));
        assert_eq!(all_shard_keys().count(), SHARDS as usize);
        assert!(all_shard_keys().any(|k| k == shard_key("anything")));
    }
}
