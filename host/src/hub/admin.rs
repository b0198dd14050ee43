//! What the admin API asks of the hub: who is connected, and ending the streams a
//! disconnect or a revocation names. Both walk the registry (every open stream of this
//! host): an admin action is rare, and a stream pays for it only with its [`Owner`].

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::subscriber::Subscriber;
use super::Hub;

/// Whose token opened a stream, kept for its lifetime (boxed: one pointer in the
/// registry, the strings on the heap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The token's `sub`.
    pub subject: Box<str>,
    /// The token's `jti` (empty: none).
    pub token_id: Box<str>,
    /// The token's `iat`.
    pub issued_at: Option<u64>,
    /// A super-admin's token (hidden from, and out of reach of, a company's admins).
    pub super_admin: bool,
}

/// A registered stream's owner and identity.
#[derive(Debug)]
pub(super) struct StreamMeta {
    pub(super) owner: Owner,
    /// The `n` of its connection ID (`{epoch}-c{n}`).
    pub(super) number: u64,
    /// When it opened (Unix milliseconds).
    pub(super) opened_at: u64,
}

/// One open stream, as the admin API lists it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// The connection ID its `connected` event carried.
    pub id: String,
    /// The host (its epoch) that holds it.
    pub host: String,
    /// The company.
    pub company_id: String,
    /// The token's subject.
    pub subject: String,
    /// Its channels.
    pub channels: Vec<String>,
    /// When it opened (Unix milliseconds).
    pub opened_at: u64,
}

/// Which streams an admin action names (all given fields must match).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Streams of this company (`None`: any; only super-admins leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// Streams opened with tokens of this subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The stream with this connection ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Streams subscribed to this channel (listing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Whether super-admins' streams are included (only for a super-admin caller).
    #[serde(default)]
    pub include_super_admins: bool,
}

impl Selector {
    /// Whether the stream of `owner` in `company` (connection number `number`) is named.
    fn names(&self, company: &str, owner: &Owner, number: Option<Option<u64>>, own_number: u64) -> bool {
        (self.include_super_admins || !owner.super_admin)
            && self.company_id.as_deref().is_none_or(|c| c == company)
            && self.subject.as_deref().is_none_or(|s| *s == *owner.subject)
            && number.is_none_or(|n| n == Some(own_number))
    }
}

impl Hub {
    /// Registers a subscriber for heartbeats, expiry, shutdown and admin actions, with
    /// its connection number.
    pub(super) fn register(
        &self,
        subscriber: &Arc<Subscriber>,
        deadline: Option<tokio::time::Instant>,
        company: &Arc<super::company::Company>,
        owner: Owner,
    ) -> (usize, u64) {
        let number = self
            .inner
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let meta = Box::new(StreamMeta {
            owner,
            number,
            opened_at: super::now_ms(),
        });
        let key = self.inner.registry.lock().insert(super::Registered {
            subscriber: subscriber.clone(),
            deadline,
            company: company.clone(),
            meta,
        });
        (key, number)
    }

    /// Counts a stream or waiting poll of `company` refused at a connection limit.
    pub(crate) fn count_refusal(&self, company: &str) {
        let company = self.company(company);
        self.count(&company, super::stats::Counter::LimitRefusals, 1);
    }

    fn connection_id(&self, number: u64) -> String {
        format!("{}-c{number}", self.inner.epoch)
    }

    /// Ends every stream that `selector` names and `also` accepts (given its company
    /// and owner) after `last`; returns how many.
    pub fn disconnect(&self, selector: &Selector, also: impl Fn(&str, &Owner) -> bool, last: &Bytes) -> u64 {
        let number = selector.connection_id.as_deref().map(|id| self.parse_connection_id(id));
        if number == Some(None) {
            return 0; // another host's (or no) connection
        }
        let names = self.company_names();
        let mut closed = 0;
        for (_, r) in self.inner.registry.lock().iter() {
            let company = names.get(&Arc::as_ptr(&r.company)).map_or("", String::as_str);
            let hit = selector.names(company, &r.meta.owner, number, r.meta.number) && also(company, &r.meta.owner);
            // A waiting poll (Redis) is registered without a deadline: not a stream.
            if hit && r.deadline.is_some() && !r.subscriber.is_closing() {
                r.subscriber.close(last.clone());
                closed += 1;
            }
        }
        closed
    }

    /// This host's streams that `selector` names, at most `cap` (and whether more
    /// matched). One pass over the registry, then one company lock at a time for the
    /// channels (not kept per stream: it would cost every stream).
    pub fn connections(&self, selector: &Selector, cap: usize) -> (Vec<ConnectionInfo>, bool) {
        let names = self.company_names();
        let number = selector.connection_id.as_deref().map(|id| self.parse_connection_id(id));
        if number == Some(None) {
            return (Vec::new(), false);
        }
        let mut picked = Vec::new();
        for (_, r) in self.inner.registry.lock().iter() {
            let company = names.get(&Arc::as_ptr(&r.company)).map_or("", String::as_str);
            let hit = selector.names(company, &r.meta.owner, number, r.meta.number);
            if hit && r.deadline.is_some() && !r.subscriber.is_closing() {
                let info = ConnectionInfo {
                    id: self.connection_id(r.meta.number),
                    host: self.inner.epoch.clone(),
                    company_id: company.to_owned(),
                    subject: r.meta.owner.subject.to_string(),
                    channels: Vec::new(),
                    opened_at: r.meta.opened_at,
                };
                picked.push((info, r.company.clone(), r.subscriber.clone()));
            }
        }
        let mut channels: HashMap<*const Subscriber, Vec<String>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (_, company, _) in &picked {
            if !seen.insert(Arc::as_ptr(company)) {
                continue;
            }
            let state = company.state.lock();
            for (name, ch) in &state.channels {
                for (_, sub) in ch.subscribers.iter() {
                    channels.entry(Arc::as_ptr(sub)).or_default().push(name.clone());
                }
            }
        }
        let mut list: Vec<ConnectionInfo> = picked
            .into_iter()
            .filter_map(|(mut info, _, sub)| {
                info.channels = channels.remove(&Arc::as_ptr(&sub)).unwrap_or_default();
                info.channels.sort();
                let wanted = selector.channel.as_ref().is_none_or(|ch| info.channels.contains(ch));
                wanted.then_some(info)
            })
            .collect();
        list.sort_by_key(|c| c.opened_at);
        let more = list.len() > cap;
        list.truncate(cap);
        (list, more)
    }

    /// The `n` of one of this host's connection IDs.
    fn parse_connection_id(&self, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(self.inner.epoch.as_str())?.strip_prefix("-c")?;
        rest.parse().ok()
    }

    fn company_names(&self) -> HashMap<*const super::company::Company, String> {
        self.inner
            .companies
            .lock()
            .iter()
            .map(|(name, c)| (Arc::as_ptr(c), name.clone()))
            .collect()
    }
}
