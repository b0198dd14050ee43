//! Standalone Redis behind Sentinel: the host names the Sentinels and the master's name,
//! never the master's address, and asks again whenever the master may have moved.
//!
//! A failover reaches the host three ways:
//! - The Sentinels announce it (`+switch-master`): [`Sentinels::watch`] follows that from
//!   one Sentinel at a time and moves the host's *epoch*. For a while after, an answer
//!   naming another master is refused (a Sentinel that has not heard yet, while the old
//!   master, alive in a switchover, still calls itself master).
//! - The same task asks who is master every few seconds (a switch missed while its
//!   subscription was down, or a Sentinel that went quiet).
//! - Connections fail: the old master is dead (refused, reset, timed out) or demoted
//!   (Sentinel kills its clients, and a write that gets there anyway is answered
//!   `READONLY`).
//!
//! Connections opened in an earlier epoch are stale: the shared one ([`conn::MasterConn`])
//! reconnects before its next command, and a reader's or the control follower's
//! ([`conn::PinnedConn`]) fails at once, even mid blocking read, so its owner reconnects
//! and checks history again, as after any reconnect.

mod conn;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisResult};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

pub(crate) use conn::{MasterConn, PinnedConn};

/// Longest a question to the Sentinels (and the check of the master they name) may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the watch asks who is master, and pings its subscription.
const POLL: Duration = Duration::from_secs(5);
/// How long after an announcement an answer naming another master is refused.
const CONVERGE: Duration = Duration::from_secs(30);

/// The Sentinels and the master they are asked about.
pub(crate) struct Sentinels {
    /// Redis's Sentinel client: asks each Sentinel in turn, checks the master's `ROLE`.
    client: Mutex<SentinelClient>,
    /// One client per Sentinel, for the announcements.
    watchers: Vec<redis::Client>,
    /// The master's name (`sentinel monitor <name> ...`).
    name: String,
    /// `host:port` of the first Sentinel, for messages.
    first: String,
    /// The master's credentials and database (its address comes from the Sentinels).
    master_info: redis::ConnectionInfo,
    db: i64,
    /// Moves when the master may have changed; connections of an older epoch are stale.
    epoch: watch::Sender<u64>,
    state: parking_lot::Mutex<State>,
}

/// What the host knows of the master.
#[derive(Default)]
struct State {
    /// `host:port` of the master last named, and how often that changed.
    addr: Option<String>,
    switches: u64,
    /// The master last switched to (announced, or found changed), and until when an
    /// answer naming another is stale.
    switched: Option<(String, Instant)>,
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
        let redis::ConnectionAddr::Tcp(name, _) = info.addr() else {
            return Err((
                ErrorKind::InvalidClientConfig,
                "the master's name must be a redis:// URL host",
            )
                .into());
        };
        let name = name.clone();
        let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info.redis_settings().clone());
        let watchers = sentinels
            .iter()
            .map(|u| redis::Client::open(u.as_str()))
            .collect::<RedisResult<Vec<_>>>()?;
        let first = watchers
            .first()
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_default();
        let client = SentinelClient::build(sentinels.to_vec(), name.clone(), Some(node), SentinelServerType::Master)?;
        Ok(Self {
            client: Mutex::new(client),
            watchers,
            name,
            first,
            db: info.redis_settings().db(),
            master_info: info.clone(),
            epoch: watch::Sender::new(0),
            state: parking_lot::Mutex::new(State::default()),
        })
    }

    /// For messages: which master, through which Sentinel; never a password.
    pub(crate) fn describe(&self) -> String {
        format!("master {} via sentinel {}", self.name, self.first)
    }

    /// For `/sse/stats`: the master last named, and how many times it changed.
    pub(crate) fn status(&self) -> serde_json::Value {
        let state = self.state.lock();
        serde_json::json!({ "master": state.addr, "switches": state.switches })
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> u64 {
        *self.epoch.borrow()
    }

    /// Epoch changes from now on.
    pub(crate) fn moves(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    fn move_epoch(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// A client for the current master, as the Sentinels name it now, and the epoch that
    /// answer belongs to (a connection opened from it is stale once the epoch moves on).
    pub(crate) async fn master(&self) -> RedisResult<(redis::Client, u64)> {
        let client = {
            let mut sentinel = self.client.lock().await;
            within(sentinel.async_get_client()).await?
        };
        let addr = client.get_connection_info().addr().to_string();
        // Shortly after a switch, an answer naming another master is stale (a Sentinel
        // that has not heard yet, while the old master, alive in a switchover, still
        // calls itself master), unless the master switched to no longer answers as one
        // (a second failover whose announcement was missed).
        let recent = self.state.lock().switched.clone();
        if let Some((switched, _)) = recent.filter(|(to, until)| *to != addr && Instant::now() < *until) {
            if self.answers_as_master(&switched).await {
                return Err(RedisError::from((
                    ErrorKind::Io,
                    "a Sentinel still names the old master",
                    format!("the master is now {switched}"),
                )));
            }
        }
        let mut state = self.state.lock();
        if state.addr.as_ref().is_some_and(|known| *known != addr) {
            state.switches += 1;
            state.switched = Some((addr.clone(), Instant::now() + CONVERGE));
            tracing::warn!(redis = %addr, "Sentinel names a new master");
            // Whoever still holds a connection to the old one must let go.
            self.move_epoch();
        }
        state.addr = Some(addr);
        Ok((client, self.epoch()))
    }

    /// Whether the server at `addr` (`ip:port`) answers `ROLE` as a master.
    async fn answers_as_master(&self, addr: &str) -> bool {
        let Some((host, port)) = addr.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse().ok()?))) else {
            return false;
        };
        let info = self
            .master_info
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host.to_owned(), port));
        let role = async {
            let mut conn = redis::Client::open(info)?.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE").query_async::<redis::Value>(&mut conn).await
        };
        matches!(within(role).await, Ok(redis::Value::Array(items))
            if items.first().is_some_and(|r| matches!(r, redis::Value::BulkString(b) if b == b"master")))
    }

    /// A connection of one's own to the current master, that fails once the epoch moves.
    pub(crate) async fn pinned(&self, config: &AsyncConnectionConfig) -> RedisResult<PinnedConn> {
        let (client, epoch) = self.master().await?;
        let conn = client.get_multiplexed_async_connection_with_config(config).await?;
        Ok(PinnedConn::new(conn, epoch, self.moves(), self.db))
    }

    /// Follows the Sentinels' `+switch-master` announcements for as long as the backend
    /// lives, from one Sentinel after another as they fail, and asks who is master every
    /// [`POLL`].
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut delay = Duration::from_millis(100);
        for i in (0..self.watchers.len()).cycle() {
            if let Err(e) = self.follow_switches(&self.watchers[i], &mut delay).await {
                tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64, "lost the Sentinel's announcements");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(ASK_TIMEOUT);
        }
    }

    async fn follow_switches(&self, sentinel: &redis::Client, delay: &mut Duration) -> RedisResult<()> {
        let mut pubsub = within(sentinel.get_async_pubsub()).await?;
        within(pubsub.subscribe("+switch-master")).await?;
        *delay = Duration::from_millis(100);
        let (mut sink, mut messages) = pubsub.split();
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else {
                        return Err((ErrorKind::Io, "the Sentinel's subscription closed").into());
                    };
                    // "<name> <old-ip> <old-port> <new-ip> <new-port>"
                    let payload: String = msg.get_payload()?;
                    let words: Vec<&str> = payload.split(' ').collect();
                    if let [name, _, _, ip, port] = words[..] {
                        if name == self.name {
                            tracing::warn!(announcement = %payload, "Sentinel switched the master; reconnecting");
                            self.state.lock().switched = Some((format!("{ip}:{port}"), Instant::now() + CONVERGE));
                            self.move_epoch();
                        }
                    }
                }
                _ = poll.tick() => {
                    // A switch missed while unsubscribed moves the epoch here; a Sentinel
                    // that went quiet fails its ping.
                    if let Err(e) = self.master().await {
                        tracing::debug!(error = %e, "asking Sentinel for the master failed");
                    }
                    within(sink.ping::<redis::Value>()).await?;
                }
            }
        }
    }
}

/// `fut` within [`ASK_TIMEOUT`].
async fn within<T>(fut: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(ASK_TIMEOUT, fut)
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "no Sentinel answered in time")))?
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
        assert_eq!(s.describe(), "master mymaster via sentinel 127.0.0.1:26379");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!s.status().to_string().contains("hunter2"));
    }
}
