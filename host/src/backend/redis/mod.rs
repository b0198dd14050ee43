//! The Redis Streams backend: several hosts share history, fan-out and limits.
//!
//! - Each (company, channel) is a stream; a publish is one Lua script that XADDs every
//!   event with an ID continuing the company's last ID, so IDs are totally ordered per
//!   company and any host resumes any client (`scripts`).
//! - Reader tasks (`redis.readers`, companies hashed among them) follow the streams the
//!   host's subscribers need, with blocking XREADs or by waiting on each publish's
//!   announcement (`redis.reader`; always the latter on a cluster), and fan out through
//!   the local hub (`reader`).
//! - A subscribe reads its replay in one script (consistent with its resume checks) and is
//!   then adopted by the reader, which re-reads from the replay's head so nothing falls in
//!   between (`replay`).
//! - Connection counts per company are kept in Redis per node, with node leases so a
//!   crashed node's slots expire (`lease`).
//! - Admin actions (list, disconnect, revoke) go to every host through a control stream
//!   (`control`).

mod conn;
mod control;
mod follow;
mod keys;
mod lease;
mod reader;
mod replay;
mod scripts;
mod sentinel;
mod settings;
mod shared;
mod status;

use std::sync::Arc;
use std::time::Duration;

use conn::{Conn, Target};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Backend, BackendError, BoxFuture, PollRequest, StreamRequest};
use crate::hub::event::reset_frame_at;
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::{Hub, NewEvent, PollOutcome, Published, Subscription};
use keys::{Keys, StreamId};
use replay::{Cursor, Replay};
use scripts::Scripts;
use shared::{Shared, WAITERS};
use status::Status;

pub use settings::RedisSettings;

/// Redis-backed event store. Dropping it stops its background tasks.
#[derive(Debug)]
pub struct RedisBackend {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RedisBackend {
    /// Connects (failing clearly when Redis cannot be reached or is older than 7.0),
    /// takes this node's lease and starts the reader and lease tasks.
    pub async fn connect(
        settings: RedisSettings,
        hub: Hub,
        admin: Arc<crate::admin::Control>,
    ) -> Result<Self, BackendError> {
        let target =
            Target::new(&settings).map_err(|e| BackendError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let addr = target.addr();
        let down = |e: redis::RedisError| BackendError::Unavailable(format!("cannot reach Redis at {addr}: {e}"));
        let mut conn = target.connect().await.map_err(down)?;
        let info: String = match &mut conn {
            Conn::Single(_) | Conn::Sentinel(_) => redis::cmd("INFO").arg("server").query_async(&mut conn).await,
            Conn::Cluster(c) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                let mut info = redis::cmd("INFO");
                info.arg("server");
                c.route_command(info, route)
                    .await
                    .and_then(|v| redis::FromRedisValue::from_redis_value(v).map_err(Into::into))
            }
        }
        .map_err(down)?;
        check_version(&info).map_err(BackendError::Unavailable)?;
        let mut waiters = Vec::new();
        if settings.min_replicas_ack > 0 {
            let timeout = settings.min_replicas_timeout + Duration::from_secs(2);
            for _ in 0..WAITERS {
                waiters.push(target.connect_with(timeout).await.map_err(down)?);
            }
        }
        // Unbounded on purpose: releases are sent from `Drop` (a stream's slot and follow
        // references going away), which can neither wait for room nor fail; acquires and
        // adoptions are bounded by the local connection limits that admitted them. Both queues hold one
        // small message per stream at most, and the tasks drain them continuously.
        let reader_count = settings.readers.max(1);
        let (reader_txs, reader_rxs): (Vec<_>, Vec<_>) = (0..reader_count).map(|_| mpsc::unbounded_channel()).unzip();
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            hub,
            keys: Keys::new(&settings.key_prefix),
            settings,
            addr: addr.clone(),
            scripts: Scripts::new(),
            target,
            conn,
            waiters,
            next_waiter: std::sync::atomic::AtomicUsize::new(0),
            node: new_node_id(),
            status: Status::new(reader_count),
            readers: reader_txs,
            ops: ops_tx,
        });
        let control_from = control::prime(&shared, &admin).await.map_err(down)?;
        tracing::info!(redis = %addr, node = %shared.node, "redis backend connected");
        let mut tasks: Vec<JoinHandle<()>> = reader_rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| tokio::spawn(reader::Reader::new(shared.clone(), i, rx).run()))
            .collect();
        tasks.extend([
            tokio::spawn(lease::run(shared.clone(), ops_rx)),
            tokio::spawn(control::run(shared.clone(), admin, control_from)),
        ]);
        if let Target::Sentinel(sentinels) = &shared.target {
            tasks.push(tokio::spawn(sentinels.clone().watch()));
        }
        Ok(Self { shared, tasks })
    }

    async fn open(&self, req: StreamRequest<'_>) -> Result<Subscription, BackendError> {
        let s = &self.shared;
        let slot = s.hub.acquire_slot(req.company)?;
        // Concurrently: the cluster-wide slot (through the lease task's queue) and the
        // replay read. A replay read for a refused stream is simply dropped.
        let (remote, replay) = tokio::join!(
            lease::acquire(s, req.company),
            replay::read(s, req.company, req.channels, Cursor::from_resume(req.resume), 0)
        );
        let (remote, replay) = (remote?, replay?);
        let last = replay
            .events
            .last()
            .and_then(|e| Some((s.keys.stream(req.company, &e.channel), StreamId::parse(&e.id)?)));
        let (initial, replayed) = match replay.reset {
            None => (
                replay.events.iter().map(|e| e.frame.clone()).collect(),
                replay.events.len(),
            ),
            Some(reason) => {
                s.hub.count_reset(req.company, reason);
                (vec![reset_frame_at(&replay.head.to_string(), reason)], 0)
            }
        };
        self.adopt(reader::Adoption {
            company: req.company.to_owned(),
            channels: req.channels.to_vec(),
            from: replay.head,
            initial,
            replayed,
            deadline: Some(s.hub.stream_deadline(req.expires_at)),
            slot: Some(slot),
            remote: Some(remote),
            owner: req.owner.clone(),
            last,
        })
        .await
    }

    /// Hands a subscriber to the reader, which attaches it between two reads.
    async fn adopt(&self, adoption: reader::Adoption) -> Result<Subscription, BackendError> {
        let (tx, rx) = oneshot::channel();
        let gone = || BackendError::Unavailable("the Redis reader stopped".into());
        self.shared
            .reader_for(&adoption.company)
            .send(reader::Request::Adopt(Box::new(adoption), tx))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    async fn poll_once(&self, req: &PollRequest<'_>, since: Option<&str>) -> Result<PollOutcome, BackendError> {
        let cursor = Cursor::from_resume(since);
        let count = req.limit.saturating_add(1);
        let Replay {
            head,
            mut events,
            reset,
        } = replay::read(&self.shared, req.company, req.channels, cursor, count).await?;
        if let Some(reason) = reset {
            self.shared.hub.count_reset(req.company, reason);
        }
        let truncated = events.len() > req.limit;
        events.truncate(req.limit);
        let next = match events.last() {
            Some(last) if truncated && reset.is_none() => last.id.clone(),
            _ => head.to_string(),
        };
        Ok(PollOutcome {
            events,
            next,
            reset: reset.is_some(),
        })
    }

    async fn poll_wait(&self, req: PollRequest<'_>) -> Result<PollOutcome, BackendError> {
        let first = self.poll_once(&req, req.since).await?;
        if req.wait.is_zero() || !first.events.is_empty() || first.reset {
            return Ok(first);
        }
        let deadline = Instant::now() + req.wait;
        let since = first.next;
        let from = StreamId::parse(&since).unwrap_or_default();
        // A waiting poll holds a connection slot of its company, here and cluster-wide,
        // like a stream: one token cannot park thousands of waiters every publish wakes.
        let s = &self.shared;
        let slot = s.hub.acquire_slot(req.company)?;
        let remote = lease::acquire(s, req.company).await?;
        // Follow the channels from the head just seen; wake on the first frame.
        let waiter = self
            .adopt(reader::Adoption {
                company: req.company.to_owned(),
                channels: req.channels.to_vec(),
                from,
                initial: Vec::new(),
                replayed: 0,
                deadline: None,
                slot: Some(slot),
                remote: Some(remote),
                owner: crate::hub::admin::Owner::default(),
                last: None,
            })
            .await?;
        loop {
            let frame = std::future::poll_fn(|cx| waiter.subscriber.poll_next(cx));
            let woke = tokio::time::timeout_at(deadline, frame).await.is_ok();
            let outcome = self.poll_once(&req, Some(&since)).await?;
            if !woke || !outcome.events.is_empty() || outcome.reset || Instant::now() >= deadline {
                return Ok(outcome);
            }
        }
    }
}

impl Backend for RedisBackend {
    fn publish<'a>(
        &'a self,
        company: &'a str,
        events: &'a [NewEvent<'a>],
        key: Option<&'a IdempotencyKey>,
        meter: Option<super::Meter>,
    ) -> BoxFuture<'a, Result<Published, BackendError>> {
        Box::pin(async move {
            self.shared.hub.validate(events)?;
            let published = replay::publish(&self.shared, company, events, key, meter).await?;
            if !published.replayed {
                self.shared.hub.count_published(company, published.ids.len());
            }
            Ok(published)
        })
    }

    fn subscribe<'a>(&'a self, req: StreamRequest<'a>) -> BoxFuture<'a, Result<Subscription, BackendError>> {
        Box::pin(self.open(req))
    }

    fn poll<'a>(&'a self, req: PollRequest<'a>) -> BoxFuture<'a, Result<PollOutcome, BackendError>> {
        Box::pin(self.poll_wait(req))
    }

    fn status(&self) -> serde_json::Value {
        self.shared.status.snapshot(&self.shared)
    }

    fn meters_publishes(&self) -> bool {
        true
    }

    fn reader_lag(&self) -> Option<std::time::Duration> {
        Some(self.shared.status.lag())
    }

    fn control<'a>(
        &'a self,
        msg: &'a crate::admin::ControlMessage,
    ) -> BoxFuture<'a, Result<super::Replies, BackendError>> {
        Box::pin(control::broadcast(&self.shared, msg))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            control::leave(&self.shared, self.shared.hub.epoch()).await;
            lease::give_back(&self.shared).await;
        })
    }
}

/// A random node ID: a restarted host is a new node (its old lease just expires).
fn new_node_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// XINFO STREAM's `entries-added` and `recorded-first-entry-id` (resume checks) need 7.0.
fn check_version(info: &str) -> Result<(), String> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 7 {
        return Err(format!(
            "Redis {version} is too old: the redis backend needs 7.0 or newer"
        ));
    }
    Ok(())
}
