//! Redis key names and stream IDs.
//!
//! Every key of a company carries the company in a hash tag (`sse:{acme}:…`), so one
//! company's streams, metadata and connection counts live in one cluster slot and a
//! script may touch them together.

use std::fmt;

/// Key names under a configurable prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Hash `{floor, last}`: the first ID this Redis knows for the company, and the
    /// last ID issued (the company's head).
    pub(crate) fn meta(&self, company: &str) -> String {
        format!("{}:{{{company}}}:meta", self.prefix)
    }

    /// The stream of one (company, channel).
    pub(crate) fn stream(&self, company: &str, channel: &str) -> String {
        format!("{}:{{{company}}}:ch:{channel}", self.prefix)
    }

    /// The record of a publish idempotency key: `<body digest> <ids>`, expiring. The key
    /// follows the hash tag, so it cannot move the record out of the company's slot.
    pub(crate) fn idempotency(&self, company: &str, key: &str) -> String {
        format!("{}:{{{company}}}:idem:{key}", self.prefix)
    }

    /// Sorted set of the company's idempotency records by time (the cap's order).
    pub(crate) fn idempotency_index(&self, company: &str) -> String {
        format!("{}:{{{company}}}:idem", self.prefix)
    }

    /// The company's publish-rate bucket `{tokens, at}`, shared by every host.
    pub(crate) fn publish_rate(&self, company: &str) -> String {
        format!("{}:{{{company}}}:rate", self.prefix)
    }

    /// Hash node → open streams of the company on that node, and `~node` → that node's
    /// lease on them (expiry, ms of Redis time).
    pub(crate) fn conns(&self, company: &str) -> String {
        format!("{}:{{{company}}}:conns", self.prefix)
    }

    /// Written once per Redis dataset: when it changes, Redis lost its data.
    pub(crate) fn instance(&self) -> String {
        format!("{}:instance", self.prefix)
    }

    /// The pub/sub channel every publish is announced on, for announced readers (the
    /// message is the company's meta key).
    pub(crate) fn notify(&self) -> String {
        format!("{}:notify", self.prefix)
    }

    /// The stream of admin actions every host follows (`control.rs`).
    pub(crate) fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }

    /// Hash of the revocations in force (entry key → JSON), read by a starting host.
    pub(crate) fn revocations(&self) -> String {
        format!("{}:revocations", self.prefix)
    }

    /// Sorted set of live hosts by their last check-in (milliseconds).
    pub(crate) fn hosts(&self) -> String {
        format!("{}:hosts", self.prefix)
    }

    /// Hash host → reply to one admin action, expiring.
    pub(crate) fn replies(&self, action: &str) -> String {
        format!("{}:reply:{action}", self.prefix)
    }
}

/// A Redis stream ID, `<ms>-<seq>`: the event ID clients see and resume with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    /// Parses `<ms>-<seq>` (both decimal); anything else is not one of our IDs.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The position in the company's total order, as the hub compares it.
    pub(crate) fn order(self) -> u128 {
        (u128::from(self.ms) << 64) | u128::from(self.seq)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_order() {
        let a = StreamId::parse("1700000000000-0").unwrap();
        let b = StreamId::parse("1700000000000-12").unwrap();
        assert!(a < b && a.order() < b.order());
        assert_eq!(b.to_string(), "1700000000000-12");
        for bad in ["", "-", "1-", "-1", "a-1", "1-2-3", "0000ab12-7x", "1 -2"] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn company_keys_share_a_hash_tag() {
        let k = Keys::new("sse");
        assert_eq!(k.stream("acme", "orders"), "sse:{acme}:ch:orders");
        assert_eq!(k.meta("acme"), "sse:{acme}:meta");
        assert_eq!(k.conns("acme"), "sse:{acme}:conns");
    }
}
