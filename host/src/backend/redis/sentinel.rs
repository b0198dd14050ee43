//! Standalone Redis behind Sentinel: the host names the Sentinels and the master's name,
//! never the master's address, and asks again whenever a connection to it fails.
//!
//! A failover reaches the host two ways:
//! - The Sentinels announce it (`+switch-master`): [`Sentinels::watch`] follows that and
//!   moves the host's *epoch*. Connections opened in an earlier epoch are stale: the
//!   shared one reconnects before its next command, and a reader's or the control
//!   follower's fails at once (even mid blocking read), so its owner reconnects and checks
//!   history again, as after any reconnect.
//! - Its connections fail: the old master is dead (connect refused, I/O errors, timeouts)
//!   or demoted (Sentinel kills its clients as it reconfigures it, and a write that gets
//!   there anyway is answered `READONLY`). Any of these drops the connection too.
//!
//! Either way the next command asks the Sentinels for the master again. Redis's Sentinel
//! client checks that the node they name calls itself master (`ROLE`), so a stale answer
//! is refused rather than used.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::{watch, Mutex};

/// Longest a question to the Sentinels (and the check of the master they name) may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The Sentinels and the master they are asked about.
pub(crate) struct Sentinels {
    client: Mutex<SentinelClient>,
    /// The master's name (`sentinel monitor <name> ...`).
    name: String,
    /// `host:port` of the first Sentinel, for messages.
    first: String,
    db: i64,
    /// Moves when the master may have changed; connections of an older epoch are stale.
    epoch: watch::Sender<u64>,
    /// `host:port` of the master last connected to, and how often it changed.
    master: parking_lot::Mutex<(Option<String>, u64)>,
}

impl std::fmt::Debug for Sentinels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sentinels({} via {})", self.name, self.first)
    }
}

impl Sentinels {
    /// `sentinels`: the Sentinels' `redis://host:port` (with their own credentials, if
    /// any). `master`: a URL whose host is the master's name and whose user, password and
    /// database are the master's (`redis://:secret@mymaster/0`), as other Redis clients
    /// name a master behind Sentinel.
    pub(crate) fn new(sentinels: &[String], master: &str) -> RedisResult<Self> {
        let info = redis::IntoConnectionInfo::into_connection_info(master)?;
        let name = match info.addr() {
            redis::ConnectionAddr::Tcp(host, _) | redis::ConnectionAddr::TcpTls { host, .. } => host.clone(),
            _ => return Err((ErrorKind::InvalidClientConfig, "the master's name must be a URL host").into()),
        };
        let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info.redis_settings().clone());
        let first = sentinels
            .first()
            .and_then(|u| redis::Client::open(u.as_str()).ok())
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_default();
        let client = SentinelClient::build(sentinels.to_vec(), name.clone(), Some(node), SentinelServerType::Master)?;
        Ok(Self {
            client: Mutex::new(client),
            name,
            first,
            db: info.redis_settings().db(),
            epoch: watch::Sender::new(0),
            master: parking_lot::Mutex::new((None, 0)),
        })
    }

    /// For messages: which master, through which Sentinel; never a password.
    pub(crate) fn describe(&self) -> String {
        format!("master {} via sentinel {}", self.name, self.first)
    }

    /// For `/sse/stats`: the master last connected to, and how many times it changed.
    pub(crate) fn status(&self) -> serde_json::Value {
        let (addr, switches) = self.master.lock().clone();
        serde_json::json!({ "master": addr, "switches": switches })
    }

    /// A client for the current master, as the Sentinels name it now.
    pub(crate) async fn master(&self) -> RedisResult<redis::Client> {
        let client = {
            let mut sentinel = self.client.lock().await;
            within(sentinel.async_get_client()).await?
        };
        let addr = client.get_connection_info().addr().to_string();
        let mut master = self.master.lock();
        if master.0.as_ref().is_some_and(|known| *known != addr) {
            master.1 += 1;
            tracing::warn!(redis = %addr, "Sentinel names a new master");
            // Whoever still holds a connection to the old one must let go.
            self.epoch.send_modify(|e| *e += 1);
        }
        master.0 = Some(addr);
        Ok(client)
    }

    /// Epoch changes from now on.
    pub(crate) fn moves(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// Follows the Sentinels' `+switch-master` announcements for as long as the backend
    /// lives, from one Sentinel after another as they fail.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut delay = Duration::from_millis(100);
        loop {
            if let Err(e) = self.follow_switches(&mut delay).await {
                tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64, "lost the Sentinels' announcements");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(ASK_TIMEOUT);
        }
    }

    async fn follow_switches(&self, delay: &mut Duration) -> RedisResult<()> {
        let sentinel = {
            let mut client = self.client.lock().await;
            within(client.async_get_sentinel_client()).await?
        };
        let mut pubsub = within(sentinel.get_async_pubsub()).await?;
        within(pubsub.subscribe("+switch-master")).await?;
        *delay = Duration::from_millis(100);
        // A switch while unsubscribed was not announced to us: ask who is master now
        // (a changed answer moves the epoch).
        if self.master.lock().0.is_some() {
            self.master().await?;
        }
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            // "<name> <old-ip> <old-port> <new-ip> <new-port>"
            let payload: String = msg.get_payload()?;
            if payload.split(' ').next() == Some(self.name.as_str()) {
                tracing::warn!(announcement = %payload, "Sentinel switched the master; reconnecting");
                self.epoch.send_modify(|e| *e += 1);
            }
        }
        Err((ErrorKind::Io, "the Sentinel's subscription closed").into())
    }

    /// A connection of one's own to the current master, that fails once the epoch moves.
    pub(crate) async fn pinned(self: &Arc<Self>, config: &AsyncConnectionConfig) -> RedisResult<PinnedConn> {
        let moves = self.moves();
        let conn = self
            .master()
            .await?
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        Ok(PinnedConn {
            conn,
            moves,
            db: self.db,
        })
    }
}

/// `fut` within [`ASK_TIMEOUT`].
async fn within<T>(fut: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(ASK_TIMEOUT, fut)
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "no Sentinel answered in time")))?
}

/// A connection to the master as it was when opened, for one task's blocking reads: once
/// the master moved, its commands (even one blocked in a read) fail, so its task
/// reconnects and checks history again rather than follow the new master silently.
#[derive(Clone)]
pub(crate) struct PinnedConn {
    conn: MultiplexedConnection,
    moves: watch::Receiver<u64>,
    db: i64,
}

impl PinnedConn {
    /// `fut`, unless the master moves first.
    async fn unless_moved<T>(
        moves: &mut watch::Receiver<u64>,
        fut: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        let moved = || RedisError::from((ErrorKind::Io, "the Redis master moved"));
        if moves.has_changed().unwrap_or(true) {
            return Err(moved());
        }
        tokio::select! {
            r = fut => r,
            _ = moves.changed() => Err(moved()),
        }
    }
}

impl ConnectionLike for PinnedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(Self::unless_moved(&mut self.moves, self.conn.req_packed_command(cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(Self::unless_moved(
            &mut self.moves,
            self.conn.req_packed_commands(pipeline, offset, count),
        ))
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

/// A multiplexed connection to the current master, opened again (after asking the
/// Sentinels) once the one it had failed.
#[derive(Clone)]
pub(crate) struct MasterConn {
    inner: Arc<Inner>,
}

struct Inner {
    sentinels: Arc<Sentinels>,
    config: AsyncConnectionConfig,
    /// The open connection and its generation (a failure drops only the one it saw).
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Moves when the master did: the open connection is then dropped.
    moves: Mutex<watch::Receiver<u64>>,
}

impl MasterConn {
    /// Connects to the master now (so a host fails at start when it cannot).
    pub(crate) async fn connect(sentinels: Arc<Sentinels>, response_timeout: Duration) -> RedisResult<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ASK_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        let conn = Self {
            inner: Arc::new(Inner {
                moves: Mutex::new(sentinels.moves()),
                sentinels,
                config,
                current: Mutex::new(None),
            }),
        };
        conn.get().await?;
        Ok(conn)
    }

    /// The open connection, or a new one to whatever the Sentinels call master now. One
    /// task reconnects; the others wait for it rather than all asking at once.
    async fn get(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let mut current = self.inner.current.lock().await;
        let mut moves = self.inner.moves.lock().await;
        if moves.has_changed().unwrap_or(false) {
            *current = None;
        }
        if let Some(open) = current.as_ref() {
            return Ok(open.clone());
        }
        // Seen before asking: a move announced while connecting is not lost.
        moves.mark_unchanged();
        let client = self.inner.sentinels.master().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.inner.config)
            .await?;
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(redis = %client.get_connection_info().addr(), "connected to the master Sentinel names");
        *current = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    /// Drops connection `generation` if `failed` says it no longer reaches the master.
    async fn check(&self, generation: u64, failed: bool) {
        if !failed {
            return;
        }
        let mut current = self.inner.current.lock().await;
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            tracing::warn!("lost the Redis master; asking Sentinel again");
            *current = None;
        }
    }
}

/// True when `e` means the connection no longer reaches a writable master.
fn lost_master(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || e.is_timeout()
        || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// The same for one reply of a pipeline (an error there comes back as a value).
fn lost_master_in(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly))
}

impl ConnectionLike for MasterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut conn) = self.get().await?;
            let reply = conn.req_packed_command(cmd).await;
            let failed = match &reply {
                Ok(v) => lost_master_in(v),
                Err(e) => lost_master(e),
            };
            self.check(generation, failed).await;
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut conn) = self.get().await?;
            let reply = conn.req_packed_commands(pipeline, offset, count).await;
            let failed = match &reply {
                Ok(values) => values.iter().any(lost_master_in),
                Err(e) => lost_master(e),
            };
            self.check(generation, failed).await;
            reply
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.sentinels.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_is_named_by_the_url_host_and_messages_hold_no_password() {
        let s = Sentinels::new(
            &["redis://127.0.0.1:26379".into(), "redis://127.0.0.1:26380".into()],
            "redis://:hunter2@mymaster/3",
        )
        .unwrap();
        assert_eq!(s.name, "mymaster");
        assert_eq!(s.db, 3);
        let text = s.describe();
        assert_eq!(text, "master mymaster via sentinel 127.0.0.1:26379");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn io_timeouts_and_readonly_mean_the_master_is_lost_other_errors_do_not() {
        assert!(lost_master(&RedisError::from((ErrorKind::Io, "reset"))));
        let parsed = redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n").unwrap();
        assert!(lost_master_in(&parsed));
        let other = redis::parse_redis_value(b"-ERR wrong number of arguments\r\n").unwrap();
        assert!(!lost_master_in(&other));
        assert!(!lost_master(&RedisError::from((ErrorKind::Client, "bad input"))));
    }
}
