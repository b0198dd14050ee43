//! This host's revocation list: what the native edge and the host check on every
//! identified request, and what the filter fetches (`feed`). With Redis every host holds
//! the same list (loaded before it serves, then kept current by the control stream).
//!
//! Bounded twice: at most `MAX_ENTRIES` in force, and at most
//! [`MAX_ENTRIES_PER_COMPANY`] per company, so one tenant's admin cannot fill the list
//! and stop everyone else's revocations (super-admins are held to the total only).
//! The index and the feed are rebuilt on every change (a few milliseconds at the cap),
//! not per request: a check is a lock, an `Arc` clone and two hash lookups.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use sse_policy::revocation::{Feed, Revocation, RevocationList, MAX_ENTRIES};
use sse_policy::{DenyReason, Identity};

/// Entries one company's admins may have in force at once.
pub const MAX_ENTRIES_PER_COMPANY: usize = 1000;

/// Why a revocation was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    /// The list holds `MAX_ENTRIES` entries in force.
    #[error("the revocation list is full ({MAX_ENTRIES} entries in force); entries leave it at their `until`")]
    Full,
    /// The entry names neither or both of a token and a subject.
    #[error("a revocation names exactly one of jti and subject")]
    Malformed,
    /// The company has `MAX_ENTRIES_PER_COMPANY` entries in force.
    #[error(
        "this company has {MAX_ENTRIES_PER_COMPANY} revocations in force; entries leave the list at their `until`"
    )]
    CompanyFull,
}

/// The entries in force, their index, and the feed body the filter fetches.
#[derive(Debug, Default)]
pub struct RevocationStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Revocation>,
    list: Arc<RevocationList>,
    feed: Bytes,
    etag: String,
    /// The earliest `until`: nothing needs pruning before then.
    next_expiry: u64,
}

impl Inner {
    /// Drops expired entries; rebuilds when anything changed.
    fn settle(&mut self, now: u64, changed: bool) {
        let before = self.entries.len();
        if now >= self.next_expiry {
            self.entries.retain(|_, e| e.until > now);
            self.next_expiry = self.entries.values().map(|e| e.until).min().unwrap_or(u64::MAX);
        }
        if changed || before != self.entries.len() || self.feed.is_empty() {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let mut entries: Vec<Revocation> = self.entries.values().cloned().collect();
        entries.sort_by_key(Revocation::id);
        let body = serde_json::to_vec(&Feed {
            entries: entries.clone(),
        })
        .expect("a feed serializes");
        use sha2::{Digest as _, Sha256};
        let digest = Sha256::digest(&body);
        self.etag = format!("\"{}\"", hex(&digest[..12]));
        self.feed = Bytes::from(body);
        self.list = Arc::new(RevocationList::new(entries));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RevocationStore {
    /// Records `entry` (merging with one for the same token or subject: the later
    /// `until` and `issuedBefore` win). Returns the entry as recorded. `privileged` (a
    /// super-admin) is held to the total cap only.
    pub fn add(&self, entry: Revocation, now: u64, privileged: bool) -> Result<Revocation, RevokeError> {
        let mut inner = self.inner.lock();
        inner.settle(now, false);
        let k = entry.id().ok_or(RevokeError::Malformed)?;
        if let Some(old) = inner.entries.get_mut(&k) {
            let before = old.clone();
            old.until = old.until.max(entry.until);
            old.issued_before = old.issued_before.max(entry.issued_before);
            let recorded = old.clone();
            // The same entry again (the host that took the request, then its own control
            // message): nothing to rebuild.
            let changed = recorded != before;
            inner.settle(now, changed);
            return Ok(recorded);
        }
        if inner.entries.len() >= MAX_ENTRIES {
            return Err(RevokeError::Full);
        }
        let company = &entry.company_id;
        if !privileged && inner.entries.values().filter(|e| e.company_id == *company).count() >= MAX_ENTRIES_PER_COMPANY
        {
            return Err(RevokeError::CompanyFull);
        }
        inner.next_expiry = inner.next_expiry.min(entry.until);
        inner.entries.insert(k, entry.clone());
        inner.settle(now, true);
        Ok(entry)
    }

    /// Replaces every entry (a host loading the shared list), keeping at most
    /// `MAX_ENTRIES` (those that last longest): a list the filter would refuse is never
    /// served.
    pub fn replace_all(&self, mut entries: Vec<Revocation>, now: u64) {
        entries.retain(|e| e.until > now);
        entries.sort_by_key(|e| std::cmp::Reverse(e.until));
        entries.truncate(MAX_ENTRIES);
        let mut inner = self.inner.lock();
        inner.entries = entries.into_iter().filter_map(|e| Some((e.id()?, e))).collect();
        inner.next_expiry = 0;
        inner.settle(now, true);
    }

    /// Refuses an identity a revocation in force names.
    pub fn check(&self, who: &Identity, now: u64) -> Result<(), DenyReason> {
        self.list().check(who, now)
    }

    /// The list in force, indexed (to end the streams it names after a reload).
    pub fn list(&self) -> Arc<RevocationList> {
        self.inner.lock().list.clone()
    }

    /// The entries in force for `company` (all with `None`), for the admin API.
    pub fn entries(&self, company: Option<&str>, now: u64) -> Vec<Revocation> {
        let mut inner = self.inner.lock();
        inner.settle(now, false);
        let mut out: Vec<Revocation> = inner
            .entries
            .values()
            .filter(|e| company.is_none_or(|c| e.company_id == c))
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.until));
        out
    }

    /// The feed body and its `ETag`.
    pub fn feed(&self, now: u64) -> (Bytes, String) {
        let mut inner = self.inner.lock();
        inner.settle(now, false);
        (inner.feed.clone(), inner.etag.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jti(company: &str, jti: &str, until: u64) -> Revocation {
        Revocation {
            company_id: company.into(),
            jti: Some(jti.into()),
            subject: None,
            issued_before: None,
            until,
        }
    }

    #[test]
    fn entries_merge_expire_and_change_the_etag() {
        let store = RevocationStore::default();
        let (_, empty) = store.feed(0);
        store.add(jti("acme", "t", 100), 0, false).unwrap();
        let merged = store.add(jti("acme", "t", 200), 0, false).unwrap();
        assert_eq!(merged.until, 200);
        assert_eq!(store.entries(Some("acme"), 0).len(), 1);
        assert!(store.entries(Some("beta"), 0).is_empty());
        let (body, etag) = store.feed(0);
        assert_ne!(etag, empty);
        assert!(std::str::from_utf8(&body).unwrap().contains("\"jti\":\"t\""));
        assert_eq!(store.feed(199).1, etag, "unchanged until it expires");
        assert_eq!(store.feed(200).1, empty, "expired at `until`");
    }

    #[test]
    fn one_company_cannot_fill_the_list_and_the_total_is_bounded() {
        let store = RevocationStore::default();
        for i in 0..MAX_ENTRIES_PER_COMPANY {
            store.add(jti("acme", &i.to_string(), 100), 0, false).unwrap();
        }
        assert_eq!(
            store.add(jti("acme", "more", 100), 0, false),
            Err(RevokeError::CompanyFull)
        );
        assert!(
            store.add(jti("acme", "1", 150), 0, false).is_ok(),
            "extending one still works"
        );
        assert!(
            store.add(jti("beta", "x", 100), 0, false).is_ok(),
            "other companies still can"
        );
        let nearly: Vec<Revocation> = (1..MAX_ENTRIES).map(|i| jti("ops", &i.to_string(), 100)).collect();
        store.replace_all(nearly, 0);
        assert!(store.add(jti("ops", "last", 100), 0, true).is_ok());
        assert_eq!(store.add(jti("ops", "more", 100), 0, true), Err(RevokeError::Full));
        // A shared list over the cap (two hosts raced) is cut to the cap when loaded.
        let many: Vec<Revocation> = (0..MAX_ENTRIES + 5).map(|i| jti("x", &i.to_string(), 100)).collect();
        store.replace_all(many, 0);
        assert_eq!(store.entries(None, 0).len(), MAX_ENTRIES);
        let (body, _) = store.feed(0);
        assert!(
            RevocationList::from_feed(&body).is_ok(),
            "the filter accepts what is served"
        );
    }
}
