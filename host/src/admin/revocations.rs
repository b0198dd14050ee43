//! This host's revocation list: what the native edge and the host check on every
//! identified request, and what the filter fetches (`feed`). With Redis every host holds
//! the same list (loaded at start, then kept current by the control stream).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use sse_policy::revocation::{Feed, Revocation, RevocationList, MAX_ENTRIES};
use sse_policy::{DenyReason, Identity};

/// Why a revocation was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    /// The list holds `MAX_ENTRIES` entries in force.
    #[error("the revocation list is full ({MAX_ENTRIES} entries in force)")]
    Full,
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
    /// `list` and `feed` are behind `entries`.
    dirty: bool,
}

fn key(e: &Revocation) -> String {
    match (&e.jti, &e.subject) {
        (Some(jti), _) => format!("jti\n{}\n{jti}", e.company_id),
        (_, Some(sub)) => format!("sub\n{}\n{sub}", e.company_id),
        _ => String::new(),
    }
}

impl Inner {
    /// Drops expired entries; the index and feed are rebuilt when next asked for.
    fn settle(&mut self, now: u64, changed: bool) {
        let before = self.entries.len();
        if now >= self.next_expiry {
            self.entries.retain(|_, e| e.until > now);
            self.next_expiry = self.entries.values().map(|e| e.until).min().unwrap_or(u64::MAX);
        }
        if changed || before != self.entries.len() {
            self.dirty = true;
        }
    }

    /// Rebuilds the index and the feed after a change (once per change, not per add: a
    /// burst of revocations costs one rebuild).
    fn rebuild(&mut self) {
        if !self.dirty && !self.feed.is_empty() {
            return;
        }
        self.dirty = false;
        let mut entries: Vec<Revocation> = self.entries.values().cloned().collect();
        entries.sort_by_key(key);
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
    /// `until` and `issuedBefore` win). Returns the entry as recorded.
    pub fn add(&self, entry: Revocation, now: u64) -> Result<Revocation, RevokeError> {
        let mut inner = self.inner.lock();
        inner.settle(now, false);
        let k = key(&entry);
        let full = inner.entries.len() >= MAX_ENTRIES;
        let recorded = match inner.entries.get_mut(&k) {
            Some(old) => {
                old.until = old.until.max(entry.until);
                old.issued_before = old.issued_before.max(entry.issued_before);
                old.clone()
            }
            None if full => return Err(RevokeError::Full),
            None => {
                inner.entries.insert(k, entry.clone());
                entry
            }
        };
        inner.next_expiry = inner.next_expiry.min(recorded.until);
        inner.settle(now, true);
        Ok(recorded)
    }

    /// Replaces every entry (a host loading the shared list).
    pub fn replace_all(&self, entries: Vec<Revocation>, now: u64) {
        let mut inner = self.inner.lock();
        inner.entries = entries.into_iter().map(|e| (key(&e), e)).collect();
        inner.entries.remove("");
        inner.next_expiry = 0;
        inner.settle(now, true);
    }

    /// Refuses an identity a revocation in force names.
    pub fn check(&self, who: &Identity, now: u64) -> Result<(), DenyReason> {
        let list = {
            let mut inner = self.inner.lock();
            inner.rebuild();
            inner.list.clone()
        };
        list.check(who, now)
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
        inner.rebuild();
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
        store.add(jti("acme", "t", 100), 0).unwrap();
        let merged = store.add(jti("acme", "t", 200), 0).unwrap();
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
    fn the_list_is_bounded() {
        let store = RevocationStore::default();
        for i in 0..MAX_ENTRIES {
            store.add(jti("acme", &i.to_string(), 100), 0).unwrap();
        }
        assert_eq!(store.add(jti("acme", "one-more", 100), 0), Err(RevokeError::Full));
        assert!(store.add(jti("acme", "1", 150), 0).is_ok(), "extending one still works");
    }
}
