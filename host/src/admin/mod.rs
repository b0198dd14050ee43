//! The admin plane: who is connected, disconnects and revocations, on one host or (with
//! Redis) on every host.
//!
//! An admin action is a [`ControlMessage`]. The backend delivers it: the memory backend
//! applies it here; the Redis backend appends it to a control stream every host follows
//! and gathers each host's [`ControlReply`]. [`Control::apply`] is what a host does with
//! a message, whoever sent it.
//!
//! # Layout
//! - `revocations`: the list in force, checked per request and served to the filter.
//! - `feed`: the signed revocation feed, over HTTP (Envoy) and in-process (embedded).
//! - `merge`: one answer from every host's listing.

pub mod feed;
pub mod merge;
pub mod revocations;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sse_policy::revocation::{Revocation, RevocationList, Token};

use crate::hub::admin::{ConnectionInfo, Selector};
use crate::hub::Hub;
use revocations::RevocationStore;

/// The `retry:` of a stream ended by an admin: a day. The client library treats the
/// `revoked` reason as final until its token changes; this keeps other clients (a native
/// `EventSource`) from hammering the edge with a token that will be refused anyway.
pub const REVOKED_RETRY_MS: u64 = 86_400_000;
/// Most connections one host lists.
pub const MAX_LISTED: usize = 1000;

/// An admin action, as hosts exchange it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ControlMessage {
    /// List the streams `selector` names, and the counters of its company (or all).
    List {
        /// Which streams.
        selector: Selector,
    },
    /// End the streams `selector` names with `closing` (`revoked`).
    Disconnect {
        /// Which streams.
        selector: Selector,
    },
    /// Record a revocation and end the streams it names.
    Revoke {
        /// The entry.
        entry: Revocation,
    },
}

/// What one host did with a [`ControlMessage`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ControlReply {
    /// Its listing.
    Listed(Box<HostListing>),
    /// Streams it ended.
    Disconnected {
        /// How many.
        count: u64,
    },
    /// Streams it ended for a revocation (`None`: its list is full, nothing recorded).
    Revoked {
        /// How many.
        count: Option<u64>,
    },
}

/// One host's part of `GET /sse/admin/connections`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostListing {
    /// The host (its epoch: the prefix of its connection IDs).
    pub host: String,
    /// Its `/sse/stats` numbers for the selector's company (or the whole host).
    pub stats: serde_json::Value,
    /// Its streams the selector names (at most [`MAX_LISTED`]).
    pub connections: Vec<ConnectionInfo>,
    /// True when more matched.
    pub truncated: bool,
    /// Events published and delivered per second since the previous listing (over at
    /// least a second; zero on the first).
    pub published_per_sec: f64,
    /// See `published_per_sec`.
    pub delivered_per_sec: f64,
}

/// What a host applies admin actions to.
#[derive(Debug)]
pub struct Control {
    hub: Hub,
    /// The revocations in force on this host.
    pub revocations: Arc<RevocationStore>,
    /// The last counter sample per scope (company, or `*`), for rates.
    samples: Mutex<HashMap<String, Sample>>,
}

/// A scope's counters when last sampled, and the rates computed then.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    published: u64,
    delivered: u64,
    rates: (f64, f64),
}

/// The frame that ends a stream an admin cut off.
pub fn revoked_frame() -> Bytes {
    crate::state::closing_frame(REVOKED_RETRY_MS, "revoked")
}

impl Control {
    /// The admin plane of `hub`, with its revocation list.
    pub fn new(hub: Hub, revocations: Arc<RevocationStore>) -> Self {
        Self {
            hub,
            revocations,
            samples: Mutex::default(),
        }
    }

    /// This host's name in listings.
    pub fn host(&self) -> &str {
        self.hub.epoch()
    }

    /// Applies `msg` on this host.
    pub fn apply(&self, msg: &ControlMessage) -> ControlReply {
        let last = revoked_frame();
        match msg {
            ControlMessage::List { selector } => ControlReply::Listed(Box::new(self.list(selector))),
            ControlMessage::Disconnect { selector } => ControlReply::Disconnected {
                count: self.hub.disconnect(selector, |_, _| true, &last),
            },
            ControlMessage::Revoke { entry } => {
                let now = crate::clock::unix_secs();
                // Whoever asked was allowed this entry: no company quota here (it was
                // applied where the request came in).
                match self.revocations.add(entry.clone(), now, true) {
                    Ok(recorded) => {
                        let one = RevocationList::new([recorded]);
                        let count = self.cut(&one, now);
                        ControlReply::Revoked { count: Some(count) }
                    }
                    Err(_) => ControlReply::Revoked { count: None },
                }
            }
        }
    }

    /// Ends the open streams whose tokens `list` names (a new entry, or the whole list
    /// after a reload).
    pub fn cut(&self, list: &RevocationList, now: u64) -> u64 {
        let everyone = Selector {
            include_super_admins: true,
            ..Selector::default()
        };
        self.hub.disconnect(
            &everyone,
            |company, o| {
                let token = Token {
                    company,
                    subject: &o.subject,
                    token_id: &o.token_id,
                    issued_at: o.issued_at,
                    super_admin: o.super_admin,
                };
                list.names(&token, now)
            },
            &revoked_frame(),
        )
    }

    fn list(&self, selector: &Selector) -> HostListing {
        let stats = match &selector.company_id {
            Some(c) => self.hub.company_stats(c),
            None => self.hub.stats(),
        };
        let (connections, truncated) = self.hub.connections(selector, MAX_LISTED);
        let scope = selector.company_id.clone().unwrap_or_else(|| "*".into());
        let (published, delivered) = (stats.counters.published, stats.counters.delivered);
        let (published_per_sec, delivered_per_sec) = self.rates(scope, published, delivered);
        HostListing {
            host: self.host().to_owned(),
            stats: serde_json::to_value(&stats).unwrap_or_default(),
            connections,
            truncated,
            published_per_sec,
            delivered_per_sec,
        }
    }

    /// Rates since the scope's previous sample, taken anew once that is a second old;
    /// until then the rates computed last (so two pages polling at once both see them).
    fn rates(&self, scope: String, published: u64, delivered: u64) -> (f64, f64) {
        let now = Instant::now();
        let mut samples = self.samples.lock();
        if samples.len() > 10_000 {
            samples.clear(); // bounded: companies come and go
        }
        let first = Sample {
            at: now,
            published,
            delivered,
            rates: (0.0, 0.0),
        };
        let sample = samples.entry(scope).or_insert(first);
        let secs = now.duration_since(sample.at).as_secs_f64();
        if secs >= 1.0 {
            *sample = Sample {
                rates: (
                    published.saturating_sub(sample.published) as f64 / secs,
                    delivered.saturating_sub(sample.delivered) as f64 / secs,
                ),
                ..first
            };
        }
        sample.rates
    }
}
