//! The default backend: history in this process (the hub's rings).

use serde_json::json;

use super::{Backend, BackendError, BoxFuture, PollRequest, StreamRequest};
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::{Hub, NewEvent, PollOutcome, Published, Subscription};

/// One host, no shared state: the hub is the store.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    hub: Hub,
}

impl MemoryBackend {
    /// A backend over `hub`'s own history.
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }
}

impl Backend for MemoryBackend {
    fn publish<'a>(
        &'a self,
        company: &'a str,
        events: &'a [NewEvent<'a>],
        key: Option<&'a IdempotencyKey>,
        _meter: Option<super::Meter>, // this host meters its own publishes (`meters_publishes`)
    ) -> BoxFuture<'a, Result<Published, BackendError>> {
        Box::pin(async move { Ok(self.hub.publish_batch(company, events, key)?) })
    }

    fn subscribe<'a>(&'a self, req: StreamRequest<'a>) -> BoxFuture<'a, Result<Subscription, BackendError>> {
        Box::pin(async move {
            Ok(self
                .hub
                .subscribe(req.company, req.channels, req.resume, req.expires_at)?)
        })
    }

    fn poll<'a>(&'a self, req: PollRequest<'a>) -> BoxFuture<'a, Result<PollOutcome, BackendError>> {
        Box::pin(async move {
            Ok(if req.wait.is_zero() {
                self.hub.poll(req.company, req.channels, req.since, req.limit)
            } else {
                self.hub
                    .poll_wait(req.company, req.channels, req.since, req.limit, req.wait)
                    .await?
            })
        })
    }

    fn status(&self) -> serde_json::Value {
        json!({ "kind": "memory", "epoch": self.hub.epoch() })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
