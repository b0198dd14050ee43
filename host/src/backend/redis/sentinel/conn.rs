//! Connections to the master Sentinel names: the shared one follows it, a task's own
//! fails when it moves.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Sentinels, ASK_TIMEOUT};

/// After a failed reconnect, callers get its error for this long instead of trying again
/// (each try may take a Sentinel round and a connect timeout).
const FAIL_FAST: Duration = Duration::from_millis(100);

/// A multiplexed connection to the current master, opened again (after asking the
/// Sentinels) once the one it had failed or the master moved. Commands on an open
/// connection take no lock; one caller reconnects and the others share its outcome.
#[derive(Clone)]
pub(crate) struct MasterConn {
    inner: Arc<Inner>,
}

struct Inner {
    sentinels: Arc<Sentinels>,
    config: AsyncConnectionConfig,
    current: parking_lot::RwLock<Option<Open>>,
    /// Held by the caller reconnecting; holds the last failed attempt.
    reconnecting: tokio::sync::Mutex<Option<(Instant, RedisError)>>,
}

/// An open connection, its generation (a failure drops only the one it saw) and the
/// epoch it belongs to.
#[derive(Clone)]
struct Open {
    generation: u64,
    epoch: u64,
    conn: MultiplexedConnection,
}

impl MasterConn {
    /// Connects to the master now (so a host fails at start when it cannot).
    pub(crate) async fn connect(sentinels: Arc<Sentinels>, response_timeout: Duration) -> RedisResult<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ASK_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        let conn = Self {
            inner: Arc::new(Inner {
                sentinels,
                config,
                current: parking_lot::RwLock::new(None),
                reconnecting: tokio::sync::Mutex::new(None),
            }),
        };
        conn.get().await?;
        Ok(conn)
    }

    /// The open connection if it is of the current epoch.
    fn fresh(&self) -> Option<Open> {
        let open = self.inner.current.read().clone()?;
        (open.epoch == self.inner.sentinels.epoch()).then_some(open)
    }

    /// The open connection, or a new one to whatever the Sentinels call master now.
    async fn get(&self) -> RedisResult<Open> {
        if let Some(open) = self.fresh() {
            return Ok(open);
        }
        let asked = Instant::now();
        let mut failure = self.inner.reconnecting.lock().await;
        if let Some(open) = self.fresh() {
            return Ok(open); // another caller reconnected meanwhile
        }
        if let Some((at, e)) = failure.as_ref() {
            // Its attempt failed while we waited, or just before: share the outcome.
            if *at >= asked || at.elapsed() < FAIL_FAST {
                return Err(e.clone());
            }
        }
        match self.open().await {
            Ok(open) => {
                *failure = None;
                *self.inner.current.write() = Some(open.clone());
                Ok(open)
            }
            Err(e) => {
                *failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    async fn open(&self) -> RedisResult<Open> {
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let (client, epoch) = self.inner.sentinels.master().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.inner.config)
            .await?;
        tracing::info!(redis = %client.get_connection_info().addr(), "connected to the master Sentinel names");
        Ok(Open {
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            epoch,
            conn,
        })
    }

    /// Drops connection `generation` if `failed` says it no longer reaches the master.
    fn check(&self, generation: u64, failed: bool) {
        if !failed {
            return;
        }
        let mut current = self.inner.current.write();
        if current.as_ref().is_some_and(|o| o.generation == generation) {
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

/// The same for a reply (an error in a pipeline, or inside a transaction's, comes back
/// as a value).
fn lost_master_in(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => e.kind() == Some(ServerErrorKind::ReadOnly),
        Value::Array(items) => items.iter().any(lost_master_in),
        _ => false,
    }
}

impl ConnectionLike for MasterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut open = self.get().await?;
            let reply = open.conn.req_packed_command(cmd).await;
            self.check(open.generation, reply.as_ref().map_or_else(lost_master, lost_master_in));
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
            let mut open = self.get().await?;
            let reply = open.conn.req_packed_commands(pipeline, offset, count).await;
            let failed = match &reply {
                Ok(values) => values.iter().any(lost_master_in),
                Err(e) => lost_master(e),
            };
            self.check(open.generation, failed);
            reply
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.sentinels.db
    }
}

/// A connection to the master as it was when opened, for one task's blocking reads: once
/// the master moved, its commands (even one blocked in a read) fail, so its task
/// reconnects and checks history again rather than follow the new master silently.
#[derive(Clone)]
pub(crate) struct PinnedConn {
    conn: MultiplexedConnection,
    epoch: u64,
    moves: watch::Receiver<u64>,
    db: i64,
}

impl PinnedConn {
    pub(super) fn new(conn: MultiplexedConnection, epoch: u64, moves: watch::Receiver<u64>, db: i64) -> Self {
        Self { conn, epoch, moves, db }
    }

    /// `fut`, unless the master moved (before or while it runs).
    async fn unless_moved<T>(
        moves: &mut watch::Receiver<u64>,
        epoch: u64,
        fut: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        tokio::select! {
            biased;
            _ = moves.wait_for(|e| *e != epoch) => Err(RedisError::from((ErrorKind::Io, "the Redis master moved"))),
            r = fut => r,
        }
    }
}

impl ConnectionLike for PinnedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(Self::unless_moved(
            &mut self.moves,
            self.epoch,
            self.conn.req_packed_command(cmd),
        ))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(Self::unless_moved(
            &mut self.moves,
            self.epoch,
            self.conn.req_packed_commands(pipeline, offset, count),
        ))
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_timeouts_and_readonly_mean_the_master_is_lost_other_errors_do_not() {
        assert!(lost_master(&RedisError::from((ErrorKind::Io, "reset"))));
        assert!(!lost_master(&RedisError::from((ErrorKind::Client, "bad input"))));
        let readonly = redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n").unwrap();
        assert!(lost_master_in(&readonly));
        let in_exec =
            redis::parse_redis_value(b"*2\r\n:1\r\n-READONLY You can't write against a read only replica.\r\n")
                .unwrap();
        assert!(lost_master_in(&in_exec), "inside a transaction's replies");
        let other = redis::parse_redis_value(b"-ERR wrong number of arguments\r\n").unwrap();
        assert!(!lost_master_in(&other));
    }
}
