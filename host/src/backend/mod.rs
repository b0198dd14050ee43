//! Where events live. `memory` keeps history in this process (one host); `redis` keeps
//! it in Redis Streams so that several hosts share history, fan-out and limits. Only the
//! [`Broker`] calls a backend; both implementations fan out through the local [`Hub`],
//! which owns connections, queues and heartbeats either way.
//!
//! [`Hub`]: crate::hub::Hub
//! [`Broker`]: crate::broker::Broker

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::admin::{ControlMessage, ControlReply};
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::limits::LimitError;
use crate::hub::{NewEvent, PollOutcome, PublishError, Published, Subscription};

mod memory;
pub mod redis;

pub use self::redis::RedisBackend;
pub use memory::MemoryBackend;

/// A boxed future: the trait is used as `dyn Backend`, chosen at start-up.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a backend refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The event was refused (type, size).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A connection limit is reached (on this host or, with Redis, across hosts).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The event store cannot be reached: nothing was stored, nothing is lost.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The host is draining: new streams and publishes go to another instance.
    #[error("host is draining")]
    Draining,
    /// The company's publish rate (metered by the store, across hosts) is spent.
    #[error("publish rate limit reached")]
    RateLimited,
    /// Stored on the master, but fewer replicas than `redis.min_replicas_ack` confirmed
    /// it in time: not acknowledged (a failover now could lose it). Retry with the same
    /// `Idempotency-Key`.
    #[error("stored but confirmed by {acked} of {wanted} replicas in time")]
    NotReplicated {
        /// Replicas that confirmed.
        acked: u64,
        /// Replicas required.
        wanted: u32,
    },
}

/// A company's publish rate and burst, for a store that meters publishes itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meter {
    /// Events per second.
    pub rate: f64,
    /// Events that may be saved up.
    pub burst: f64,
}

/// A stream to open.
#[derive(Debug, Clone, Copy)]
pub struct StreamRequest<'a> {
    /// The company (already authorized).
    pub company: &'a str,
    /// The channels (already authorized).
    pub channels: &'a [String],
    /// `Last-Event-ID` (or `lastEventId`), if any.
    pub resume: Option<&'a str>,
    /// The token's `exp` (Unix seconds): the hub ends the stream by then
    /// ([`crate::hub::Hub::stream_deadline`]).
    pub expires_at: Option<u64>,
    /// Whose token opened it (admin listing, disconnect, revocation).
    pub owner: &'a crate::hub::admin::Owner,
}

/// A poll to answer.
#[derive(Debug, Clone, Copy)]
pub struct PollRequest<'a> {
    /// The company (already authorized).
    pub company: &'a str,
    /// The channels (already authorized).
    pub channels: &'a [String],
    /// The cursor (`since`), if any.
    pub since: Option<&'a str>,
    /// Most events to return.
    pub limit: usize,
    /// Long-poll: wait up to this long when nothing is new, holding a connection slot of
    /// the company while waiting (refused with `TooManyConnections` when none is free).
    pub wait: Duration,
}

/// The event store behind the hub.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Stores events for one company, in order, all or none; returns their IDs. With an
    /// idempotency `key` already recorded for the same body, stores nothing and returns
    /// the IDs of that first publish; the check and the record are atomic with the store.
    fn publish<'a>(
        &'a self,
        company: &'a str,
        events: &'a [NewEvent<'a>],
        key: Option<&'a IdempotencyKey>,
        meter: Option<Meter>,
    ) -> BoxFuture<'a, Result<Published, BackendError>>;

    /// Whether this store meters publishes itself ([`Meter`], shared by every host), so
    /// the HTTP layer passes the rate instead of metering on this host alone.
    fn meters_publishes(&self) -> bool {
        false
    }

    /// Opens a subscription: the replay (or `reset`) after `resume`, then live events.
    fn subscribe<'a>(&'a self, req: StreamRequest<'a>) -> BoxFuture<'a, Result<Subscription, BackendError>>;

    /// Answers a poll with the same cursors as streams; a poll that waits holds a slot.
    fn poll<'a>(&'a self, req: PollRequest<'a>) -> BoxFuture<'a, Result<PollOutcome, BackendError>>;

    /// What `/sse/stats` shows under `backend`.
    fn status(&self) -> serde_json::Value;

    /// How far behind the publishes a reader of a shared store is (`None`: no reader).
    fn reader_lag(&self) -> Option<Duration> {
        None
    }

    /// Delivers an admin action to every host sharing the store (this one included) and
    /// gathers their replies: `(host, reply)`, `None` for a live host that did not
    /// answer in time.
    fn control<'a>(&'a self, msg: &'a ControlMessage) -> BoxFuture<'a, Result<Replies, BackendError>>;

    /// Gives back what this host holds outside the process (leases, slots) at shutdown.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Each host's reply to an admin action.
pub type Replies = Vec<(String, Option<ControlReply>)>;
