//! One connection type for one Redis and for a Redis Cluster, so every command path is
//! written once. Everything the backend sends keeps to one slot per command (and per
//! pipeline): a company's keys share its hash tag, and the few global keys (control
//! stream, revocations, live hosts) are single-key commands.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::sentinel::{MasterConn, PinnedConn, Sentinels};
use super::RedisSettings;

/// Where the backend's Redis is: one server at a fixed address, the master a set of
/// Sentinels names, or a cluster found from its seed nodes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One Redis.
    Single(redis::Client),
    /// One Redis, found (again after each failure) through Sentinel.
    Sentinel(Arc<Sentinels>),
    /// A Redis Cluster (boxed: its client is much bigger than one Redis's) and its seeds.
    Cluster(Box<ClusterClient>, Vec<redis::Client>),
}

/// A connection that multiplexes the requests of every task (and, for a cluster, routes
/// each by its key's slot, following `MOVED` and `ASK`).
#[derive(Clone)]
pub(crate) enum Conn {
    /// Reconnects by itself.
    Single(ConnectionManager),
    /// Asks Sentinel for the master again after a failure.
    Sentinel(MasterConn),
    /// Reconnects and refreshes the slot map by itself.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Conn::Single",
            Self::Sentinel(_) => "Conn::Sentinel",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

/// `ConnectionLike` for an enum whose variants each hold a connection: every call goes
/// to the variant's.
macro_rules! delegate_connection_like {
    ($enum:ident: $($variant:ident),+) => {
        impl ConnectionLike for $enum {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                match self {
                    $(Self::$variant(c) => c.req_packed_command(cmd),)+
                }
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                match self {
                    $(Self::$variant(c) => c.req_packed_commands(pipeline, offset, count),)+
                }
            }

            fn get_db(&self) -> i64 {
                match self {
                    $(Self::$variant(c) => c.get_db(),)+
                }
            }
        }
    };
}

delegate_connection_like!(Conn: Single, Sentinel, Cluster);
delegate_connection_like!(Dedicated: Single, Sentinel, Cluster);

/// A connection for one task's blocking reads (it must not hold up everyone else's).
#[derive(Clone)]
pub(crate) enum Dedicated {
    /// To the one Redis.
    Single(MultiplexedConnection),
    /// To the master Sentinel named when it was opened (failing once it moved).
    Sentinel(PinnedConn),
    /// To the cluster.
    Cluster(ClusterConnection),
}

impl Target {
    /// From `redis.cluster` when it names seed nodes, `redis.sentinels` when it names
    /// Sentinels (then `redis.url` names the master), else `redis.url`.
    pub(crate) fn new(settings: &RedisSettings) -> RedisResult<Self> {
        if !settings.cluster.is_empty() {
            let seeds = settings
                .cluster
                .iter()
                .map(|u| redis::Client::open(u.as_str()))
                .collect::<RedisResult<Vec<_>>>()?;
            let client = ClusterClient::builder(settings.cluster.iter().map(String::as_str))
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(2))
                .build()?;
            return Ok(Self::Cluster(Box::new(client), seeds));
        }
        if !settings.sentinels.is_empty() {
            return Ok(Self::Sentinel(Arc::new(Sentinels::new(
                &settings.sentinels,
                &settings.url,
            )?)));
        }
        Ok(Self::Single(redis::Client::open(settings.url.as_str())?))
    }

    /// True for a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }

    /// Where Redis is, for messages (`host:port`, the master's name, the first seed of a
    /// cluster); never a password.
    pub(crate) fn addr(&self) -> String {
        match self {
            Self::Single(c) => c.get_connection_info().addr().to_string(),
            Self::Sentinel(s) => s.describe(),
            Self::Cluster(_, seeds) => seeds
                .first()
                .map(|c| format!("cluster via {}", c.get_connection_info().addr()))
                .unwrap_or_else(|| "cluster".into()),
        }
    }

    /// Where a reader subscribes to announcements: a cluster's seeds (plain pub/sub
    /// reaches every node), or the one Redis (the current master, behind Sentinel); and,
    /// behind Sentinel, what tells that the master moved away from it ([`moved`]).
    pub(crate) async fn announcement_nodes(&self) -> RedisResult<(Vec<redis::Client>, Option<Moves>)> {
        Ok(match self {
            Self::Single(c) => (vec![c.clone()], None),
            Self::Sentinel(s) => {
                let moves = s.moves();
                let (master, epoch) = s.master().await?;
                (vec![master], Some(Moves { moves, epoch }))
            }
            Self::Cluster(_, seeds) => (seeds.clone(), None),
        })
    }

    /// The shared connection.
    pub(crate) async fn connect(&self) -> RedisResult<Conn> {
        self.connect_with(Duration::from_secs(2)).await
    }

    /// A connection like [`Target::connect`]'s whose replies may take `response_timeout`
    /// (publishes that `WAIT` for replicas: a client blocked in `WAIT` holds up its
    /// later commands, so they get connections of their own).
    pub(crate) async fn connect_with(&self, response_timeout: Duration) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Ok(Conn::Single(
                    ConnectionManager::new_with_config(client.clone(), config).await?,
                ))
            }
            Self::Sentinel(s) => Ok(Conn::Sentinel(MasterConn::connect(s.clone(), response_timeout).await?)),
            Self::Cluster(client, _) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(response_timeout);
                Ok(Conn::Cluster(client.get_async_connection_with_config(config).await?))
            }
        }
    }

    /// A connection of one's own, whose commands may block for up to `response_timeout`.
    pub(crate) async fn dedicated(&self, response_timeout: Duration) -> RedisResult<Dedicated> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(response_timeout));
        match self {
            Self::Single(client) => Ok(Dedicated::Single(
                client.get_multiplexed_async_connection_with_config(&config).await?,
            )),
            Self::Sentinel(s) => Ok(Dedicated::Sentinel(s.pinned(&config).await?)),
            Self::Cluster(client, _) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(response_timeout);
                Ok(Dedicated::Cluster(
                    client.get_async_connection_with_config(config).await?,
                ))
            }
        }
    }
}

/// A pub/sub subscription to `channel` on the first of `seeds` that answers (plain
/// pub/sub messages reach subscribers on every node of a cluster).
pub(crate) async fn subscribe(seeds: &[redis::Client], channel: &str) -> RedisResult<redis::aio::PubSubStream> {
    let mut last = None;
    // From a random seed on: hosts spread over the nodes, and a dead first seed does not
    // stall every host's resubscription.
    let mut start = [0u8; 2];
    let _ = getrandom::getrandom(&mut start);
    let start = usize::from(u16::from_le_bytes(start)) % seeds.len().max(1);
    for seed in seeds.iter().cycle().skip(start).take(seeds.len()) {
        let attempt = async {
            let mut pubsub = seed.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some((redis::ErrorKind::Io, "subscribe timed out").into()),
        }
    }
    Err(last.unwrap_or_else(|| (redis::ErrorKind::Io, "no seed node").into()))
}

/// The epoch a subscription was made in, and its changes.
pub(crate) struct Moves {
    moves: tokio::sync::watch::Receiver<u64>,
    epoch: u64,
}

/// Returns when the master moved since `moves` was taken; never without Sentinel.
pub(crate) async fn moved(moves: &mut Option<Moves>) {
    if let Some(Moves { moves, epoch }) = moves {
        let epoch = *epoch;
        if moves.wait_for(|e| *e != epoch).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}
