//! One connection type for one Redis and for a Redis Cluster, so every command path is
//! written once. Everything the backend sends keeps to one slot per command (and per
//! pipeline): a company's keys share its hash tag, and the few global keys (control
//! stream, revocations, live hosts) are single-key commands.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Where the backend's Redis is: one server (maybe behind a failover-following
/// address), or a cluster found from its seed nodes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One Redis.
    Single(redis::Client),
    /// A Redis Cluster (boxed: its client is much bigger than one Redis's).
    Cluster(Box<ClusterClient>),
}

/// A connection that multiplexes the requests of every task (and, for a cluster, routes
/// each by its key's slot, following `MOVED` and `ASK`).
#[derive(Clone)]
pub(crate) enum Conn {
    /// Reconnects by itself.
    Single(ConnectionManager),
    /// Reconnects and refreshes the slot map by itself.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Conn::Single",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

/// `ConnectionLike` for an enum whose variants each hold a connection: every call goes
/// to the variant's.
macro_rules! delegate_connection_like {
    ($enum:ident) => {
        impl ConnectionLike for $enum {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                match self {
                    Self::Single(c) => c.req_packed_command(cmd),
                    Self::Cluster(c) => c.req_packed_command(cmd),
                }
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                match self {
                    Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
                    Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
                }
            }

            fn get_db(&self) -> i64 {
                match self {
                    Self::Single(c) => c.get_db(),
                    Self::Cluster(c) => c.get_db(),
                }
            }
        }
    };
}

delegate_connection_like!(Conn);
delegate_connection_like!(Dedicated);

/// A connection for one task's blocking reads (it must not hold up everyone else's).
#[derive(Clone)]
pub(crate) enum Dedicated {
    /// To the one Redis.
    Single(MultiplexedConnection),
    /// To the cluster.
    Cluster(ClusterConnection),
}

impl Target {
    /// From `redis.url`, or `redis.cluster` when it names seed nodes.
    pub(crate) fn new(url: &str, cluster: &[String]) -> RedisResult<Self> {
        if cluster.is_empty() {
            return Ok(Self::Single(redis::Client::open(url)?));
        }
        let client = ClusterClient::builder(cluster.iter().map(String::as_str))
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self::Cluster(Box::new(client)))
    }

    /// True for a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `host:port` for messages (the first seed of a cluster); never the password.
    pub(crate) fn addr(&self, cluster: &[String]) -> String {
        match self {
            Self::Single(c) => c.get_connection_info().addr().to_string(),
            Self::Cluster(_) => cluster
                .first()
                .and_then(|u| redis::Client::open(u.as_str()).ok())
                .map(|c| format!("cluster via {}", c.get_connection_info().addr()))
                .unwrap_or_else(|| "cluster".into()),
        }
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
            Self::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(response_timeout);
                Ok(Conn::Cluster(client.get_async_connection_with_config(config).await?))
            }
        }
    }

    /// A connection of one's own, whose commands may block for up to `response_timeout`.
    pub(crate) async fn dedicated(&self, response_timeout: Duration) -> RedisResult<Dedicated> {
        match self {
            Self::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(response_timeout));
                Ok(Dedicated::Single(
                    client.get_multiplexed_async_connection_with_config(&config).await?,
                ))
            }
            Self::Cluster(client) => {
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

/// A pub/sub subscription to `channel` on the first seed node that answers (plain
/// pub/sub messages reach subscribers on every node of a cluster).
pub(crate) async fn subscribe(seeds: &[String], channel: &str) -> RedisResult<redis::aio::PubSubStream> {
    let mut last = None;
    // From a random seed on: hosts spread over the nodes, and a dead first seed does not
    // stall every host's resubscription.
    let mut start = [0u8; 2];
    let _ = getrandom::getrandom(&mut start);
    let start = usize::from(u16::from_le_bytes(start)) % seeds.len().max(1);
    for seed in seeds.iter().cycle().skip(start).take(seeds.len()) {
        let attempt = async {
            let mut pubsub = redis::Client::open(seed.as_str())?.get_async_pubsub().await?;
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
