//! The hub: channels keyed by (company, channel), history, fan-out, resume and limits.
//! It knows nothing about HTTP; the `http` module turns its subscriptions into bodies.
//! Nothing outside the domain calls it directly: requests and in-process publishers go
//! through [`crate::broker::Broker`], which picks the backend.
//!
//! # Two modes
//! - **Store** (backend `memory`): the hub sequences events itself (`Hub::publish_batch`),
//!   keeps each channel's history ring and answers resumes and polls from it.
//! - **Fan-out only** (backend `redis`): Redis sequences and stores; the hub keeps no
//!   history. The backend's reader hands it events that already carry IDs
//!   (`Hub::deliver`) and attaches subscribers whose replay it computed (`Hub::attach`);
//!   see `external.rs`.
//!
//! Either way the hub owns what is local to this process: subscribers and their bounded
//! queues, heartbeats, stream lifetimes, per-company connection slots and counters.
//!
//! Locking: one map of companies (held only to find or create a company), one lock per
//! company (publish, subscribe, poll and unsubscribe of that company), and one registry
//! of all subscribers (heartbeats, expiry, shutdown). No lock is held across an await.

pub mod admin;
mod company;
mod external;
pub mod idempotency;
mod maintenance;
mod poll;
mod subscription;

pub use poll::PollOutcome;
use subscription::{register_channels, Opened};
pub use subscription::{Hold, Subscription};
pub mod event;
pub mod limits;
pub mod sse;
pub mod stats;
pub mod subscriber;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::value::RawValue;
use slab::Slab;
use tokio::time::Instant;

use company::Company;
use event::{format_id, parse_cursor, reset_frame, Cursor, Event, ResetReason};
use idempotency::{IdempotencyKey, IdempotencyStore, Seen};
use limits::{ConnectionLimits, LimitError};
use stats::{Counter, Counters};
use subscriber::{Push, Subscriber};

/// Hub tuning, from the host configuration.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Events kept per channel for resume (the seed's 100).
    pub history_size: usize,
    /// Events older than this are dropped from history ("replay the last N minutes").
    pub history_max_age: Option<Duration>,
    /// Frames a subscriber may have pending before it is dropped as a slow consumer.
    pub queue_capacity: usize,
    /// Largest accepted event payload, in bytes.
    pub max_event_bytes: usize,
    /// Concurrent streams per company.
    pub max_connections_per_company: u32,
    /// Companies in a tier, with their tier's numbers resolved against these defaults.
    pub tenants: Arc<HashMap<String, TenantSettings>>,
    /// Concurrent streams on this host.
    pub max_connections: u32,
    /// Channels with no subscribers and no publishes for this long are dropped.
    pub idle_timeout: Duration,
    /// Longest a stream lives, whatever its token says (then the client reconnects and
    /// resumes, with a fresh token if it has one).
    pub max_lifetime: Duration,
    /// How long a publish's `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
    /// Keys a company may have remembered at once (its oldest goes first).
    pub idempotency_keys_per_company: usize,
}

/// One company's numbers: its tier's where it has one, else the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantSettings {
    /// Concurrent streams.
    pub max_connections: u32,
    /// Events kept per channel for resume.
    pub history_size: usize,
    /// Events older than this leave history.
    pub history_max_age: Option<Duration>,
}

impl HubSettings {
    /// `company`'s numbers (its tier's, else the defaults).
    pub fn tenant(&self, company: &str) -> TenantSettings {
        self.tenants.get(company).copied().unwrap_or(TenantSettings {
            max_connections: self.max_connections_per_company,
            history_size: self.history_size,
            history_max_age: self.history_max_age,
        })
    }

    /// The concurrent streams `company` may hold (its tier's, else the default).
    pub fn connections_for(&self, company: &str) -> u32 {
        self.tenant(company).max_connections
    }
}

/// The defaults of the configuration file, defined once here; `config` derives the
/// file's defaults from them.
impl Default for HubSettings {
    fn default() -> Self {
        Self {
            history_size: 100,
            history_max_age: None,
            queue_capacity: 256,
            max_event_bytes: 64 * 1024,
            max_connections_per_company: sse_policy::config::DEFAULT_MAX_CONNECTIONS_PER_COMPANY,
            tenants: Arc::default(),
            max_connections: 15_000,
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(86_400),
            idempotency_keys_per_company: 10_000,
        }
    }
}

/// An event to publish: (channel, event type, JSON data).
pub type NewEvent<'a> = (&'a str, &'a str, Box<RawValue>);

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The event type is empty, too long or has characters outside `[A-Za-z0-9_.:-]`.
    #[error("event type must be 1-64 characters of [A-Za-z0-9_.:-]")]
    InvalidEventType,
    /// The payload is over `max_event_bytes`.
    #[error("event data is larger than the maximum event size")]
    TooLarge,
    /// The `Idempotency-Key` was used before for a publish with another body.
    #[error("this Idempotency-Key was used for other events; use a new key for a new publish")]
    KeyReused,
}

/// What a publish stored: the events' IDs, and whether they come from an earlier publish
/// with the same idempotency key (nothing was stored this time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The IDs, in the order of the events.
    pub ids: Vec<String>,
    /// True when answered from the idempotency record.
    pub replayed: bool,
}

/// Cheap-to-clone handle to the hub.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: HubSettings,
    epoch: String,
    seq: AtomicU64,
    connections: AtomicU64,
    companies: Mutex<HashMap<String, Arc<Company>>>,
    registry: Mutex<Slab<Registered>>,
    limits: ConnectionLimits,
    counters: Counters,
    /// Store mode's record of publish idempotency keys.
    idempotency: IdempotencyStore,
}

#[derive(Debug)]
struct Registered {
    subscriber: Arc<Subscriber>,
    deadline: Option<Instant>,
    /// Whose counters a heartbeat's overflow goes to.
    company: Arc<Company>,
    /// Whose stream it is (admin listing, disconnect, revocation).
    meta: Box<admin::StreamMeta>,
}

use crate::clock::unix_millis as now_ms;

fn new_epoch() -> String {
    let mut b = [0u8; 4];
    if getrandom::getrandom(&mut b).is_err() {
        b = (now_ms() as u32).to_be_bytes();
    }
    format!("{:08x}", u32::from_be_bytes(b))
}

impl Hub {
    /// A hub with a fresh epoch: IDs issued by earlier instances will get `reset`.
    pub(crate) fn new(settings: HubSettings) -> Self {
        let overrides = settings
            .tenants
            .iter()
            .map(|(company, t)| (company.clone(), t.max_connections))
            .collect();
        let limits = ConnectionLimits::with_overrides(
            settings.max_connections_per_company,
            overrides,
            settings.max_connections,
        );
        let idempotency = IdempotencyStore::new(settings.idempotency_ttl, settings.idempotency_keys_per_company);
        Self {
            inner: Arc::new(Inner {
                idempotency,
                settings,
                epoch: new_epoch(),
                seq: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                companies: Mutex::default(),
                registry: Mutex::default(),
                limits,
                counters: Counters::default(),
            }),
        }
    }

    /// This instance's epoch (the prefix of every event ID).
    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    /// The settings in force.
    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Adds `n` to counter `which`, host-wide and for `company`.
    fn count(&self, company: &Company, which: Counter, n: u64) {
        self.inner.counters.bump(which, n);
        company.counters.bump(which, n);
    }

    fn company(&self, name: &str) -> Arc<Company> {
        let mut map = self.inner.companies.lock();
        if let Some(c) = map.get(name) {
            return c.clone();
        }
        let c = Arc::new(Company::new(self.inner.seq.load(Ordering::SeqCst), Instant::now()));
        map.insert(name.to_owned(), c.clone());
        c
    }

    /// Checks event types and sizes (every backend stores only what passes).
    pub(crate) fn validate(&self, events: &[NewEvent<'_>]) -> Result<(), PublishError> {
        for (_, kind, data) in events {
            if !sse::is_valid_event_type(kind) {
                return Err(PublishError::InvalidEventType);
            }
            if data.get().len() > self.inner.settings.max_event_bytes {
                return Err(PublishError::TooLarge);
            }
        }
        Ok(())
    }

    /// When a stream opened now must end: after `max_lifetime`, or when its token
    /// expires (`expires_at`, Unix seconds), whichever comes first. The sweep then closes
    /// it with a `closing` event so the client reconnects with a fresh token.
    pub fn stream_deadline(&self, expires_at: Option<u64>) -> Instant {
        let mut lifetime = self.inner.settings.max_lifetime;
        if let Some(exp) = expires_at {
            lifetime = lifetime.min(Duration::from_secs(exp.saturating_sub(crate::clock::unix_secs())));
        }
        Instant::now() + lifetime
    }

    /// Store mode: publishes several events to one company atomically (all or none), in
    /// order; returns their IDs. Company and channels must already be authorized. Never
    /// blocks on subscribers. With a `key` seen before for the same body, stores nothing
    /// and returns the first publish's IDs (checked and recorded under the company's
    /// lock, so two concurrent retries store once).
    pub(crate) fn publish_batch(
        &self,
        company: &str,
        events: &[NewEvent<'_>],
        key: Option<&IdempotencyKey>,
    ) -> Result<Published, PublishError> {
        self.validate(events)?;
        let s = &self.inner.settings;
        let epoch = &self.inner.epoch;
        let company_arc = self.company(company);
        let mut ids = Vec::with_capacity(events.len());
        let mut dropped = 0;
        let mut queued = 0u64;
        let tenant = s.tenant(company);
        {
            let mut state = company_arc.state.lock();
            let now = Instant::now();
            if let Some(key) = key {
                match self.inner.idempotency.check(company, key, now) {
                    Seen::New => {}
                    Seen::Replay(ids) => return Ok(Published { ids, replayed: true }),
                    Seen::Reused => return Err(PublishError::KeyReused),
                }
            }
            let ms = now_ms();
            for (channel, kind, data) in events {
                let seq = self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1;
                let event = Arc::new(Event::new(epoch, seq, channel, kind, data.clone(), ms));
                let ch = state.channel(channel, now);
                for (_, sub) in ch.subscribers.iter() {
                    let pushed = sub.push(event.frame.clone(), || {
                        reset_frame(epoch, seq, ResetReason::SlowConsumer)
                    });
                    dropped += usize::from(pushed == Push::Overflowed);
                    queued += u64::from(pushed == Push::Queued);
                }
                ids.push(event.id.clone());
                ch.record(event, tenant.history_size, now);
            }
            state.evict_expired(tenant.history_max_age, ms);
            if let Some(key) = key {
                self.inner.idempotency.record(company, key, &ids, now);
            }
        }
        company_arc.notify.notify_waiters();
        self.count(&company_arc, Counter::Published, events.len() as u64);
        self.count(&company_arc, Counter::Delivered, queued);
        if dropped > 0 {
            self.count(&company_arc, Counter::SlowConsumerDrops, dropped as u64);
            self.count(&company_arc, Counter::Reset(ResetReason::SlowConsumer), dropped as u64);
            tracing::warn!(company, dropped, "slow consumers disconnected");
        }
        Ok(Published { ids, replayed: false })
    }

    /// Store mode: opens a subscription to `channels` of `company`, resuming after
    /// `resume` when given, ending by [`Hub::stream_deadline`] of `expires_at`. Takes a
    /// connection slot (per company and total) for its lifetime.
    pub(crate) fn subscribe(
        &self,
        company: &str,
        channels: &[String],
        resume: Option<&str>,
        expires_at: Option<u64>,
        owner: admin::Owner,
    ) -> Result<Subscription, LimitError> {
        let deadline = Some(self.stream_deadline(expires_at));
        let slot = self.inner.limits.acquire(company)?;
        let s = &self.inner.settings;
        let subscriber = Arc::new(Subscriber::new(s.queue_capacity));
        let company_arc = self.company(company);
        let (registry_key, number) = self.register(&subscriber, deadline, &company_arc, owner);
        let (initial, replayed, head, keys) = {
            let mut state = company_arc.state.lock();
            state.evict_expired(s.tenant(company).history_max_age, now_ms());
            let head = self.inner.seq.load(Ordering::SeqCst);
            let (initial, replayed) = match self.resume_point(&state, channels, resume, head) {
                Ok(None) => (Vec::new(), 0),
                Ok(Some(cursor)) => {
                    let events = state.events_after(channels, cursor, usize::MAX);
                    self.count(&company_arc, Counter::Resumed, 1);
                    let n = events.len();
                    self.count(&company_arc, Counter::Delivered, n as u64);
                    (events.iter().map(|e| e.frame.clone()).collect(), n)
                }
                Err(reason) => {
                    self.count(&company_arc, Counter::Reset(reason), 1);
                    (vec![reset_frame(&self.inner.epoch, head, reason)], 0)
                }
            };
            let keys = register_channels(&mut state, channels, &subscriber);
            (initial, replayed, head, keys)
        };
        let opened = Opened {
            company: company_arc,
            subscriber,
            keys,
            registry_key,
            number,
        };
        Ok(self.finish(
            opened,
            initial,
            replayed,
            format_id(&self.inner.epoch, head),
            Some(slot),
            None,
        ))
    }

    /// `Ok(None)`: live only; `Ok(Some(c))`: replay after `c`; `Err`: send `reset`.
    fn resume_point(
        &self,
        state: &company::CompanyState,
        channels: &[String],
        resume: Option<&str>,
        head: u64,
    ) -> Result<Option<u64>, ResetReason> {
        let Some(id) = resume.filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        match parse_cursor(id, &self.inner.epoch) {
            Cursor::After(c) if c > head => Err(ResetReason::UnknownId),
            Cursor::After(c) => state.check_cursor(channels, c).map(|()| Some(c)),
            Cursor::OtherEpoch => Err(ResetReason::Restarted),
            Cursor::Unknown => Err(ResetReason::UnknownId),
        }
    }
}
