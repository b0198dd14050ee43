//! Revoked tokens: the list every edge checks after a token verified, and the signed
//! feed through which the host hands it to the filter.
//!
//! An entry names a company and either a token (`jti`) or a subject. A subject entry
//! refuses that subject's tokens issued at or before `issuedBefore` (tokens without
//! `iat` always match: fail closed), so the user can come back with a token issued
//! later, say after a role change, while every token they held is dead. Entries end at
//! `until`, when the tokens they name have expired anyway. Company `*` (super-admins
//! only) matches every company.
//!
//! The filter learns the list over a proxy-wasm HTTP callout to the host (Envoy's cluster
//! `edge.revocations.cluster`, or the embedded host's in-process upstream) every
//! `refresh_ms`, with `If-None-Match`. A filter whose list is older than `max_stale_secs`
//! refuses identified requests (503): it cannot keep its bound, so it fails closed.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::decision::{DenyReason, Identity};
use crate::secret::Secret;

/// The company of an entry that matches every company.
pub const ANY_COMPANY: &str = "*";
/// The header carrying the feed request's timestamp (seconds since the epoch).
pub const FEED_TS: &str = "x-sse-edge-ts";
/// The header carrying the feed request's signature.
pub const FEED_SIG: &str = "x-sse-edge-sig";
/// Most entries a list holds (the host refuses more; the filter refuses a bigger feed).
pub const MAX_ENTRIES: usize = 10_000;

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// The company whose tokens it names (`*`: any).
    pub company_id: String,
    /// The token's `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The tokens' `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// With `subject`: tokens issued at or before this (seconds since the epoch) match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<u64>,
    /// The entry ends then (seconds since the epoch).
    pub until: u64,
}

impl Revocation {
    /// A stable name for the entry, one per (kind, company, token or subject): what a
    /// store files it under. `None` for an entry naming neither or both.
    pub fn id(&self) -> Option<String> {
        self.key().map(|(kind, k)| format!("{}\n{k}", kind.as_str()))
    }

    /// The key the list files it under: `jti` or `subject` entries, per company.
    fn key(&self) -> Option<(Kind, String)> {
        match (&self.jti, &self.subject) {
            (Some(jti), None) => Some((Kind::Jti, key(&self.company_id, jti))),
            (None, Some(sub)) => Some((Kind::Subject, key(&self.company_id, sub))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Jti,
    Subject,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Subject => "sub",
        }
    }
}

fn key(company: &str, value: &str) -> String {
    format!("{company}\n{value}")
}

/// The feed's body: `{"entries": [...]}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// The entries in force.
    pub entries: Vec<Revocation>,
}

/// Revocations indexed for a check per request (two hash lookups per identity).
#[derive(Debug, Default, Clone)]
pub struct RevocationList {
    by_key: HashMap<(Kind, String), Revocation>,
}

impl RevocationList {
    /// Indexes `entries`; entries that name neither or both of `jti` and `subject` are
    /// skipped (the host never writes them). Of two entries for one key the later `until`
    /// wins.
    pub fn new(entries: impl IntoIterator<Item = Revocation>) -> Self {
        let mut by_key: HashMap<(Kind, String), Revocation> = HashMap::new();
        for entry in entries {
            let Some(k) = entry.key() else { continue };
            match by_key.get_mut(&k) {
                Some(old) => {
                    old.until = old.until.max(entry.until);
                    old.issued_before = old.issued_before.max(entry.issued_before);
                }
                None => {
                    by_key.insert(k, entry);
                }
            }
        }
        Self { by_key }
    }

    /// Parses a feed body.
    pub fn from_feed(body: &[u8]) -> Result<Self, serde_json::Error> {
        let feed: Feed = serde_json::from_slice(body)?;
        if feed.entries.len() > MAX_ENTRIES {
            return Err(serde::de::Error::custom("too many revocations"));
        }
        Ok(Self::new(feed.entries))
    }

    /// Entries in force.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// `Err(Revoked)` when an entry in force at `now` names this identity's token.
    pub fn check(&self, who: &Identity, now: u64) -> Result<(), DenyReason> {
        let token = Token {
            company: &who.company,
            subject: &who.subject,
            token_id: &who.token_id,
            issued_at: who.issued_at,
            super_admin: who.super_admin,
        };
        if self.names(&token, now) {
            return Err(DenyReason::Revoked);
        }
        Ok(())
    }

    /// Whether an entry in force at `now` names `token`. A super-admin's token is named
    /// only by `*` entries (which only super-admins write): a company's admin cannot
    /// lock the platform's operators out of its company.
    pub fn names(&self, token: &Token<'_>, now: u64) -> bool {
        if self.by_key.is_empty() {
            return false;
        }
        let companies: &[&str] = if token.super_admin {
            &[ANY_COMPANY]
        } else {
            &[token.company, ANY_COMPANY]
        };
        companies.iter().any(|company| {
            let by_jti = !token.token_id.is_empty()
                && self
                    .by_key
                    .get(&(Kind::Jti, key(company, token.token_id)))
                    .is_some_and(|e| now < e.until);
            let by_subject = self
                .by_key
                .get(&(Kind::Subject, key(company, token.subject)))
                .is_some_and(|e| {
                    let issued_before = e.issued_before.unwrap_or(u64::MAX);
                    now < e.until && token.issued_at.is_none_or(|iat| iat <= issued_before)
                });
            by_jti || by_subject
        })
    }
}

/// What a revocation can name of a token.
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    /// The company it acts on.
    pub company: &'a str,
    /// Its `sub`.
    pub subject: &'a str,
    /// Its `jti` (empty: none).
    pub token_id: &'a str,
    /// Its `iat`.
    pub issued_at: Option<u64>,
    /// Whether it is a super-admin's.
    pub super_admin: bool,
}

fn feed_mac(secret: &Secret, path: &str, ts: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose()).expect("HMAC takes any key length");
    mac.update(b"sse-edge-feed-v1\n");
    for f in [path, ts] {
        mac.update(f.len().to_string().as_bytes());
        mac.update(b":");
        mac.update(f.as_bytes());
        mac.update(b"\n");
    }
    mac
}

/// The `(timestamp, signature)` headers of a feed request for `path` at `now`: only an
/// edge holding the secret may read the list.
pub fn sign_feed(secret: &Secret, path: &str, now: u64) -> [(&'static str, String); 2] {
    let ts = now.to_string();
    let sig = URL_SAFE_NO_PAD.encode(feed_mac(secret, path, &ts).finalize().into_bytes());
    [(FEED_TS, ts), (FEED_SIG, sig)]
}

/// Checks a feed request's headers; `max_skew` bounds the timestamp's age both ways.
pub fn verify_feed(secret: &Secret, path: &str, ts: Option<&str>, sig: Option<&str>, now: u64, max_skew: u64) -> bool {
    let (Some(ts), Some(sig)) = (ts, sig) else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let fresh = ts.parse::<u64>().is_ok_and(|t| t.abs_diff(now) <= max_skew);
    feed_mac(secret, path, ts).verify_slice(&sig).is_ok() && fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(company: &str, subject: &str, jti: &str, iat: Option<u64>) -> Identity {
        who_super(company, subject, jti, iat, false)
    }

    fn who_super(company: &str, subject: &str, jti: &str, iat: Option<u64>, super_admin: bool) -> Identity {
        Identity {
            subject: subject.into(),
            company: company.into(),
            roles: vec![],
            expires_at: None,
            super_admin,
            token_id: jti.into(),
            issued_at: iat,
        }
    }

    fn entry(company: &str, jti: Option<&str>, subject: Option<&str>, before: Option<u64>) -> Revocation {
        Revocation {
            company_id: company.into(),
            jti: jti.map(Into::into),
            subject: subject.map(Into::into),
            issued_before: before,
            until: 1000,
        }
    }

    #[test]
    fn a_jti_is_refused_in_its_company_only_and_until_its_end() {
        let list = RevocationList::new([entry("acme", Some("t1"), None, None)]);
        assert_eq!(list.check(&who("acme", "u", "t1", None), 10), Err(DenyReason::Revoked));
        assert_eq!(list.check(&who("other", "u", "t1", None), 10), Ok(()));
        assert_eq!(list.check(&who("acme", "u", "t2", None), 10), Ok(()));
        assert_eq!(list.check(&who("acme", "u", "", None), 10), Ok(()));
        assert_eq!(list.check(&who("acme", "u", "t1", None), 1000), Ok(()));
    }

    #[test]
    fn a_subject_is_refused_for_tokens_issued_up_to_the_revocation() {
        let list = RevocationList::new([entry("acme", None, Some("u"), Some(500))]);
        assert_eq!(
            list.check(&who("acme", "u", "", Some(499)), 10),
            Err(DenyReason::Revoked)
        );
        assert_eq!(
            list.check(&who("acme", "u", "", Some(500)), 10),
            Err(DenyReason::Revoked)
        );
        assert_eq!(list.check(&who("acme", "u", "", None), 10), Err(DenyReason::Revoked));
        assert_eq!(list.check(&who("acme", "u", "", Some(501)), 10), Ok(()));
        assert_eq!(list.check(&who("acme", "v", "", Some(1)), 10), Ok(()));
        assert_eq!(list.check(&who("beta", "u", "", Some(1)), 10), Ok(()));
    }

    #[test]
    fn the_any_company_entry_matches_everywhere_and_only_it_names_super_admins() {
        let list = RevocationList::new([entry(ANY_COMPANY, Some("t1"), None, None)]);
        assert_eq!(list.check(&who("beta", "u", "t1", None), 10), Err(DenyReason::Revoked));
        let root = who_super("beta", "u", "t1", None, true);
        assert_eq!(list.check(&root, 10), Err(DenyReason::Revoked));
        let company = RevocationList::new([entry("acme", None, Some("root"), None)]);
        let root = who_super("acme", "root", "", None, true);
        assert_eq!(
            company.check(&root, 10),
            Ok(()),
            "a company's admin cannot lock out operators"
        );
        let token = Token {
            company: "x",
            subject: "u",
            token_id: "t1",
            issued_at: None,
            super_admin: false,
        };
        assert!(!RevocationList::new([entry("y", Some("t1"), None, None)]).names(&token, 10));
    }

    #[test]
    fn malformed_entries_are_skipped_and_feeds_are_bounded() {
        let list = RevocationList::new([
            entry("acme", Some("t"), Some("u"), None),
            entry("acme", None, None, None),
        ]);
        assert!(list.is_empty());
        let big = Feed {
            entries: vec![entry("acme", Some("t"), None, None); MAX_ENTRIES + 1],
        };
        assert!(RevocationList::from_feed(&serde_json::to_vec(&big).unwrap()).is_err());
        assert!(RevocationList::from_feed(b"{\"entries\":[{\"companyId\":\"a\",\"until\":1,\"x\":1}]}").is_err());
    }

    #[test]
    fn a_feed_request_needs_the_secret_and_a_fresh_timestamp() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let [(_, ts), (_, sig)] = sign_feed(&secret, "/edge/revocations", 100);
        assert!(verify_feed(
            &secret,
            "/edge/revocations",
            Some(&ts),
            Some(&sig),
            100,
            30
        ));
        assert!(!verify_feed(&secret, "/edge/other", Some(&ts), Some(&sig), 100, 30));
        assert!(!verify_feed(
            &secret,
            "/edge/revocations",
            Some(&ts),
            Some(&sig),
            200,
            30
        ));
        assert!(!verify_feed(
            &secret,
            "/edge/revocations",
            Some("101"),
            Some(&sig),
            100,
            30
        ));
        assert!(!verify_feed(&secret, "/edge/revocations", Some(&ts), None, 100, 30));
        let other = Secret::new("fedcba9876543210fedcba9876543210");
        assert!(!verify_feed(
            &other,
            "/edge/revocations",
            Some(&ts),
            Some(&sig),
            100,
            30
        ));
    }
}
