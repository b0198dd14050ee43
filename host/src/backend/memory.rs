//! The default backend: history in this process (the hub's rings).

use std::sync::Arc;

use serde_json::json;

use super::{Backend, BackendError, BoxFuture, PollRequest, Replies, StreamRequest};
use crate::admin::{Control, ControlMessage};
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::{Hub, NewEvent, PollOutcome, Published, Subscription};

/// One host, no shared state: the hub is the store.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    hub: Hub,
    control: Arc<Control>,
}

impl MemoryBackend {
    /// A backend over `hub`'s own history; admin actions apply to `control` (this host).
    pub fn new(hub: Hub, control: Arc<Control>) -> Self {
        Self { hub, control }
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
                .subscribe(req.company, req.channels, req.resume, req.expires_at, req.owner.clone())?)
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

    fn control<'a>(&'a self, msg: &'a ControlMessage) -> BoxFuture<'a, Result<Replies, BackendError>> {
        let reply = self.control.apply(msg);
        Box::pin(async move { Ok(vec![(self.control.host().to_owned(), Some(reply))]) })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
