//! The one door into the domain.
//!
//! Every caller outside the domain (the HTTP handlers, the tick loop, drain, an embedder
//! publishing in-process) goes through a [`Broker`]. It pairs this host's [`Hub`] (local
//! subscribers, queues, lifetimes, slots, counters) with the [`Backend`] chosen at start
//! (memory or Redis), so a caller cannot publish around Redis or read numbers the backend
//! does not see: there is no other way in.
//!
//! Authorization is not done here: callers pass a company and channels the policy
//! already allowed (`sse_policy::decide`, `sse_policy::authorize_publish`).

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::backend::{Backend, BackendError, PollRequest, StreamRequest};
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::stats::StatsSnapshot;
use crate::hub::{Hub, NewEvent, PollOutcome, Published, Subscription};

/// Cheap-to-clone handle to the domain: publish, subscribe, poll, stats, housekeeping.
#[derive(Debug, Clone)]
pub struct Broker {
    hub: Hub,
    backend: Arc<dyn Backend>,
    admin: Arc<crate::admin::Control>,
    /// True once draining began; a watch so that HTTP/2 connections can wait for it (they
    /// close with GOAWAY).
    draining: Arc<tokio::sync::watch::Sender<bool>>,
}

/// What `GET /sse/stats` returns: the hub's numbers and the backend's state.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Connections, channels, history and counters of this host, or of one company.
    #[serde(flatten)]
    pub hub: StatsSnapshot,
    /// The backend (`kind`, and for Redis its connection state and node); host-wide
    /// views only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<serde_json::Value>,
}

impl Broker {
    /// Joins a hub and the backend that feeds it (the backend holds a clone of `hub`).
    pub(crate) fn new(hub: Hub, backend: Arc<dyn Backend>, admin: Arc<crate::admin::Control>) -> Self {
        Self {
            hub,
            backend,
            admin,
            draining: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// True once draining began: new streams and publishes are refused, polls do not wait.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Starts draining (once): refuses new work and ends every open stream after `last`
    /// (a short `retry:` and a `closing` event, so clients reconnect elsewhere).
    /// Returns false when draining had already begun.
    pub fn begin_drain(&self, last: &Bytes) -> bool {
        if self.draining.send_replace(true) {
            return false;
        }
        self.hub.close_all(last);
        true
    }

    /// Resolves once draining began.
    pub async fn draining_began(&self) {
        let _ = self.draining.subscribe().wait_for(|d| *d).await;
    }

    fn refuse_when_draining(&self) -> Result<(), BackendError> {
        if self.is_draining() {
            return Err(BackendError::Draining);
        }
        Ok(())
    }

    /// This instance's epoch (the prefix of IDs the memory backend issues).
    pub fn epoch(&self) -> &str {
        self.hub.epoch()
    }

    /// Publishes one event to (company, channel); returns its ID.
    pub async fn publish(
        &self,
        company: &str,
        channel: &str,
        kind: &str,
        data: Box<RawValue>,
    ) -> Result<String, BackendError> {
        let mut ids = self.publish_batch(company, &[(channel, kind, data)]).await?;
        Ok(ids.remove(0))
    }

    /// Publishes several events to one company, in order, all or none; returns their IDs.
    pub async fn publish_batch(&self, company: &str, events: &[NewEvent<'_>]) -> Result<Vec<String>, BackendError> {
        self.refuse_when_draining()?;
        Ok(self.backend.publish(company, events, None, None).await?.ids)
    }

    /// [`Broker::publish_batch`] with an idempotency key: a retry with the same key and
    /// body stores nothing and gets the first publish's IDs (`replayed`), on every host
    /// sharing the backend; the same key with another body is refused
    /// ([`crate::hub::PublishError::KeyReused`]).
    pub async fn publish_once(
        &self,
        company: &str,
        events: &[NewEvent<'_>],
        key: &IdempotencyKey,
    ) -> Result<Published, BackendError> {
        self.publish_metered(company, events, Some(key), None).await
    }

    /// The HTTP API's publish: an optional idempotency key, and with a store that meters
    /// publishes ([`Broker::meters_publishes`]), the company's rate (refused with
    /// [`BackendError::RateLimited`] once spent, across hosts; a replay spends nothing).
    pub async fn publish_metered(
        &self,
        company: &str,
        events: &[NewEvent<'_>],
        key: Option<&IdempotencyKey>,
        meter: Option<crate::backend::Meter>,
    ) -> Result<Published, BackendError> {
        self.refuse_when_draining()?;
        self.backend.publish(company, events, key, meter).await
    }

    /// Whether the store meters publishes itself (Redis: one rate across hosts).
    pub fn meters_publishes(&self) -> bool {
        self.backend.meters_publishes()
    }

    /// Opens a stream: its replay (or `reset`) after `req.resume`, then live events, for
    /// as long as the returned subscription lives. Takes a connection slot.
    pub async fn subscribe(&self, req: StreamRequest<'_>) -> Result<Subscription, BackendError> {
        self.refuse_when_draining()?;
        let result = self.backend.subscribe(req).await;
        if let Err(BackendError::Limit(_)) = &result {
            self.hub.count_refusal(req.company);
        }
        result
    }

    /// Answers a poll (long-polling when `req.wait` is not zero, unless draining), with
    /// the stream's IDs. A poll that waits holds a connection slot of its company while
    /// it does, like a stream (the backend takes it: with Redis, cluster-wide).
    pub async fn poll(&self, mut req: PollRequest<'_>) -> Result<PollOutcome, BackendError> {
        self.hub.count_poll(req.company);
        if self.is_draining() {
            req.wait = std::time::Duration::ZERO;
        }
        let result = self.backend.poll(req).await;
        if let Err(BackendError::Limit(_)) = &result {
            self.hub.count_refusal(req.company);
        }
        result
    }

    /// The host's connections, channels, history and counters (`/metrics`).
    pub fn hub_stats(&self) -> StatsSnapshot {
        self.hub.stats()
    }

    /// The counters of each of `companies`, in order (zeros for one not in memory).
    pub fn company_counters(&self, companies: &[String]) -> Vec<crate::hub::stats::CountersSnapshot> {
        self.hub.company_counters(companies)
    }

    /// How far behind the publishes the backend's reader is (`None` without one).
    pub fn reader_lag(&self) -> Option<std::time::Duration> {
        self.backend.reader_lag()
    }

    /// The host's numbers, every company and the backend: `/sse/stats` for super-admins.
    pub fn stats(&self) -> Stats {
        Stats {
            hub: self.hub.stats(),
            backend: Some(self.backend.status()),
        }
    }

    /// One company's numbers and nothing of any other: `/sse/stats` for its admins.
    pub fn company_stats(&self, company: &str) -> Stats {
        Stats {
            hub: self.hub.company_stats(company),
            backend: None,
        }
    }

    /// This host's admin plane: its revocation list.
    pub fn admin(&self) -> &crate::admin::Control {
        &self.admin
    }

    /// Delivers an admin action to every host sharing the backend and gathers their
    /// replies (`crate::admin::merge` makes one answer of them).
    pub async fn control(&self, msg: &crate::admin::ControlMessage) -> Result<crate::backend::Replies, BackendError> {
        self.backend.control(msg).await
    }

    /// Queues `frame` (a heartbeat) for every open stream.
    pub fn heartbeat(&self, frame: &Bytes) {
        self.hub.broadcast(frame);
    }

    /// Housekeeping, about once a second: ends streams past their lifetime with
    /// `on_expiry`, drops expired history and idle channels.
    pub fn sweep(&self, on_expiry: &Bytes) {
        self.hub.sweep(on_expiry);
    }

    /// Gives back what this host holds outside the process (Redis leases and slots).
    pub async fn shutdown(&self) {
        self.backend.shutdown().await;
    }
}
