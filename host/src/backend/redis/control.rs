//! Admin actions across hosts. The asking host appends the action to the control stream
//! (a revocation is first written to the revocations hash, which outlives the stream's
//! trimming); every host follows the stream with a blocking read on its own
//! connection, applies each action ([`Control::apply`]) and writes its reply under the
//! action's ID; the asker gathers the replies of the hosts that checked in lately, for
//! at most [`REPLY_WAIT`].
//!
//! Bound: a live host applies an action within one read round trip of its append. A
//! host cut off from Redis resumes the stream where it stopped, and reloads the whole
//! revocation list too (actions appended meanwhile may have been trimmed), ending every
//! open stream the list names: no revocation is lost. A disconnect trimmed away while a
//! host was cut off is lost (the asker saw that host not answer).

use std::sync::Arc;
use std::time::Duration;

use super::conn::Dedicated;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, RedisResult};
use sse_policy::revocation::Revocation;

use super::Shared;
use crate::admin::{Control, ControlMessage, ControlReply};
use crate::backend::{BackendError, Replies};

/// Longest the asker waits for the other hosts' replies.
pub(crate) const REPLY_WAIT: Duration = Duration::from_secs(2);
/// A host that has not checked in for this long is not waited for.
const HOST_TTL_MS: u64 = 5_000;
/// How long replies are kept for a slow asker.
const REPLY_TTL_MS: u64 = 30_000;
/// Actions kept in the stream (approximately): enough for any host's reconnect.
const STREAM_LEN: usize = 10_000;

/// Loads the revocations and returns the control stream's position to follow from:
/// before the host serves its first request, so it never admits a revoked token.
/// The position comes first, then the list: an action appended in between is applied
/// twice (harmless: every action is idempotent), never missed.
pub(crate) async fn prime(shared: &Shared, control: &Control) -> RedisResult<String> {
    let mut conn = shared.conn.clone();
    let newest: redis::streams::StreamRangeReply = conn.xrevrange_count(shared.keys.control(), "+", "-", 1).await?;
    let last = newest.ids.first().map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
    load_revocations(&mut conn, shared, control).await?;
    Ok(last)
}

/// Follows the control stream from `last` until the backend is dropped.
pub(crate) async fn run(shared: Arc<Shared>, control: Arc<Control>, last: String) {
    let mut delay = Duration::from_millis(100);
    let mut last = last;
    let mut reload = false;
    loop {
        match follow(&shared, &control, &mut last, reload).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "redis control stream lost; reloading revocations on reconnect");
            }
        }
        reload = true;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn follow(shared: &Shared, control: &Control, last: &mut String, reload: bool) -> RedisResult<()> {
    let block = Duration::from_secs(1);
    let mut conn = shared.target.dedicated(block + Duration::from_secs(5)).await?;
    let keys = &shared.keys;
    if reload {
        let mut conn = shared.conn.clone();
        load_revocations(&mut conn, shared, control).await?;
        let now = crate::clock::unix_secs();
        let cut = control.cut(&control.revocations.list(), now);
        tracing::info!(cut, "revocations reloaded after reconnecting");
    }
    let opts = StreamReadOptions::default()
        .block(block.as_millis() as usize)
        .count(100);
    loop {
        check_in(&mut conn, shared, control).await?;
        let reply: Option<StreamReadReply> = conn.xread_options(&[keys.control()], &[&*last], &opts).await?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            *last = entry.id.clone();
            let (Some(action), Some(body)) = (entry.get::<String>("action"), entry.get::<String>("msg")) else {
                continue;
            };
            let Ok(msg) = serde_json::from_str::<ControlMessage>(&body) else {
                tracing::warn!(action, "unreadable admin action skipped");
                continue;
            };
            let answer = serde_json::to_string(&control.apply(&msg)).unwrap_or_default();
            let key = keys.replies(&action);
            redis::pipe()
                .hset(&key, control.host(), answer)
                .pexpire(&key, REPLY_TTL_MS as i64)
                .query_async::<()>(&mut conn)
                .await?;
        }
    }
}

/// Marks this host live (and forgets hosts long gone).
async fn check_in(conn: &mut Dedicated, shared: &Shared, control: &Control) -> RedisResult<()> {
    let now = crate::clock::unix_millis();
    let hosts = shared.keys.hosts();
    redis::pipe()
        .zadd(&hosts, control.host(), now)
        .zrembyscore(&hosts, "-inf", now.saturating_sub(60 * HOST_TTL_MS))
        .query_async::<()>(conn)
        .await
}

async fn load_revocations(conn: &mut super::conn::Conn, shared: &Shared, control: &Control) -> RedisResult<()> {
    let all: Vec<(String, String)> = conn.hgetall(shared.keys.revocations()).await?;
    let now = crate::clock::unix_secs();
    let mut live = Vec::new();
    let mut expired = Vec::new();
    for (field, json) in all {
        match serde_json::from_str::<Revocation>(&json) {
            Ok(e) if e.until > now => live.push(e),
            _ => expired.push(field),
        }
    }
    if !expired.is_empty() {
        let _: () = conn.hdel(shared.keys.revocations(), expired).await?;
    }
    tracing::info!(revocations = live.len(), "revocations loaded");
    control.revocations.replace_all(live, now);
    Ok(())
}

/// Appends `msg` to the control stream and gathers the replies of live hosts.
pub(crate) async fn broadcast(shared: &Shared, msg: &ControlMessage) -> Result<Replies, BackendError> {
    let mut conn = shared.conn.clone();
    let down = |e: redis::RedisError| shared.unavailable(&e);
    let keys = &shared.keys;
    let action = random_id();
    let body = serde_json::to_string(msg).expect("an admin action serializes");
    if let ControlMessage::Revoke { entry } = msg {
        // Written before it is announced: a host that (re)loads the list meanwhile has it.
        // A later entry for the same key replaces this one here, while hosts merge them
        // (later `until` wins): the asker sends the merged entry it recorded.
        let json = serde_json::to_string(entry).expect("an entry serializes");
        let _: () = conn
            .hset(keys.revocations(), entry.id().unwrap_or_default(), json)
            .await
            .map_err(down)?;
    }
    let now = crate::clock::unix_millis();
    // Two commands, not one pipeline: the keys may live on different cluster nodes.
    let hosts: Vec<String> = conn
        .zrangebyscore(keys.hosts(), now.saturating_sub(HOST_TTL_MS), "+inf")
        .await
        .map_err(down)?;
    let _: String = redis::cmd("XADD")
        .arg(keys.control())
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_LEN)
        .arg("*")
        .arg("action")
        .arg(&action)
        .arg("msg")
        .arg(&body)
        .query_async(&mut conn)
        .await
        .map_err(down)?;
    let deadline = tokio::time::Instant::now() + REPLY_WAIT;
    let key = keys.replies(&action);
    // Count (cheap) until every live host answered or the wait is over; read once.
    while tokio::time::Instant::now() < deadline {
        let answered: usize = conn.hlen(&key).await.map_err(down)?;
        if answered >= hosts.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: std::collections::HashMap<String, String> = conn.hgetall(&key).await.map_err(down)?;
    let mut names: Vec<String> = hosts.clone();
    names.extend(got.keys().filter(|h| !hosts.contains(h)).cloned());
    Ok(names
        .into_iter()
        .map(|h| {
            let reply = got.get(&h).and_then(|j| serde_json::from_str::<ControlReply>(j).ok());
            (h, reply)
        })
        .collect())
}

/// Takes this host out of the live set (at shutdown: askers stop waiting for it).
pub(crate) async fn leave(shared: &Shared, host: &str) {
    let mut conn = shared.conn.clone();
    let _: RedisResult<()> = conn.zrem(shared.keys.hosts(), host).await;
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    getrandom::getrandom(&mut b).expect("the OS has randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
