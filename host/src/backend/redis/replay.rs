//! Calls of the publish and replay scripts, and decoding of what they return.

use std::sync::Arc;

use serde_json::value::RawValue;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::keys::StreamId;
use super::{BackendError, Shared};
use crate::hub::event::{Event, ResetReason};
use crate::hub::idempotency::IdempotencyKey;
use crate::hub::{NewEvent, PublishError, Published};

/// Where a read starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cursor {
    /// No cursor: start at the head (nothing to replay).
    Head,
    /// After this ID.
    After(StreamId),
    /// Not an ID this backend issues: answered with `reset` (unknown_id).
    Invalid,
}

impl Cursor {
    /// From a `Last-Event-ID` / `since` value.
    pub(crate) fn from_resume(resume: Option<&str>) -> Self {
        match resume.filter(|s| !s.is_empty()) {
            None => Self::Head,
            Some(s) => StreamId::parse(s).map_or(Self::Invalid, Self::After),
        }
    }
}

/// What a replay found.
#[derive(Debug)]
pub(crate) struct Replay {
    /// The company's last ID when the script ran: the replay covers everything up to it.
    pub(crate) head: StreamId,
    /// Events after the cursor, in ID order.
    pub(crate) events: Vec<Arc<Event>>,
    /// Set when the cursor cannot be honoured (then `events` is empty).
    pub(crate) reset: Option<ResetReason>,
}

/// Reads what follows `cursor` on (company, channels) up to the company's head, at most
/// `count` events per stream (0: all), merged in ID order: the check script and one XRANGE
/// per stream in one MULTI/EXEC.
pub(crate) async fn read(
    shared: &Shared,
    company: &str,
    channels: &[String],
    cursor: Cursor,
    count: usize,
) -> Result<Replay, BackendError> {
    let keys: Vec<String> = channels.iter().map(|ch| shared.keys.stream(company, ch)).collect();
    let after = match cursor {
        Cursor::After(id) => id.to_string(),
        Cursor::Head | Cursor::Invalid => String::new(),
    };
    // By hash; once more with the script's text when this Redis does not know it
    // (restarted, or a replica promoted since: scripts are not replicated).
    let build = |by_text: bool| {
        let mut pipe = redis::pipe();
        pipe.atomic();
        if by_text {
            pipe.cmd("EVAL").arg(&shared.scripts.check_source);
        } else {
            pipe.cmd("EVALSHA").arg(shared.scripts.check.get_hash());
        }
        pipe.arg(1 + keys.len())
            .arg(shared.keys.meta(company))
            .arg(&keys)
            .arg(&after);
        if !after.is_empty() {
            for key in &keys {
                let range = pipe.cmd("XRANGE").arg(key).arg(format!("({after}")).arg("+");
                if count > 0 {
                    range.arg("COUNT").arg(count);
                }
            }
        }
        pipe
    };
    let reply = exec(shared, build).await?;
    let mut parts = reply.into_iter();
    let (status, head): (String, String) = parts
        .next()
        .and_then(|v| redis::from_redis_value(v).ok())
        .unwrap_or_default();
    let head = StreamId::parse(&head).unwrap_or_default();
    let reset = match (status.as_str(), cursor) {
        (_, Cursor::Invalid) | ("unknown_id", _) => Some(ResetReason::UnknownId),
        ("too_old", _) => Some(ResetReason::TooOld),
        _ => None,
    };
    let mut events = Vec::new();
    if reset.is_none() {
        for (channel, entries) in channels.iter().zip(parts) {
            let entries: Vec<(String, Vec<String>)> = redis::from_redis_value(entries).unwrap_or_default();
            for (id, fields) in entries {
                if let Some(event) = decode_fields(&id, channel, &fields) {
                    events.push(Arc::new(event));
                }
            }
        }
        if channels.len() > 1 {
            events.sort_unstable_by_key(|e| e.order);
        }
    }
    Ok(Replay { head, events, reset })
}

/// Runs the MULTI built by `build(false)` (the check script by hash); when Redis does not
/// know the script, `build(true)` (by text, which also caches it there). An error reply
/// inside EXEC counts as the store failing.
async fn exec(shared: &Shared, build: impl Fn(bool) -> redis::Pipeline) -> Result<Vec<redis::Value>, BackendError> {
    let mut conn = shared.conn.clone();
    let no_script = |kind: Option<redis::ServerErrorKind>| kind == Some(redis::ServerErrorKind::NoScript);
    for by_text in [false, true] {
        let reply: Vec<redis::Value> = match build(by_text).query_async(&mut conn).await {
            Err(e) if !by_text && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                continue;
            }
            other => other.map_err(|e| shared.unavailable(&e))?,
        };
        match reply.first() {
            Some(redis::Value::ServerError(e)) if !by_text && no_script(e.kind()) => continue,
            Some(redis::Value::ServerError(e)) => {
                return Err(BackendError::Unavailable(format!("Redis at {}: {e:?}", shared.addr)));
            }
            _ => return Ok(reply),
        }
    }
    Err(BackendError::Unavailable("the check script could not be run".into()))
}

/// Builds an event from an entry's flat field list (`t`, type, `d`, data).
fn decode_fields(id: &str, channel: &str, fields: &[String]) -> Option<Event> {
    let field = |name: &str| fields.chunks_exact(2).find(|f| f[0] == name).map(|f| f[1].as_str());
    decode(id, channel, field("t").unwrap_or(""), field("d").unwrap_or("null"))
}

/// Builds an event from a stream entry; `None` (logged) for an entry we did not write.
/// Redis is storage, not a trusted publisher: whatever another client wrote there, the
/// ID must be a stream ID, the type a valid event type and the data JSON before a frame
/// is built, so no CR/LF or extra field reaches the wire.
pub(crate) fn decode(id: &str, channel: &str, kind: &str, data: &str) -> Option<Event> {
    let parsed = StreamId::parse(id)?;
    if !crate::hub::sse::is_valid_event_type(kind) {
        tracing::warn!(id, channel, "skipping a stream entry whose event type is not valid");
        return None;
    }
    match RawValue::from_string(data.to_owned()) {
        Ok(data) => Some(Event::external(
            id.to_owned(),
            parsed.order(),
            channel,
            kind,
            data,
            parsed.ms,
        )),
        Err(e) => {
            tracing::warn!(id, channel, error = %e, "skipping a stream entry that is not JSON");
            None
        }
    }
}

/// Runs the publish script: all events of one company, atomically, in order. With
/// `redis.min_replicas_ack`, a `WAIT` follows in the same pipeline (so on the same
/// connection: a reconnect in between cannot make it wait for nothing), and a publish
/// that fewer replicas confirmed in time is refused, though stored: a retry with the same
/// `Idempotency-Key` stores nothing more and waits again.
pub(crate) async fn publish(
    shared: &Shared,
    company: &str,
    events: &[NewEvent<'_>],
    key: Option<&IdempotencyKey>,
    meter: Option<super::super::Meter>,
) -> Result<Published, BackendError> {
    let history = &shared.hub.settings();
    let tenant = history.tenant(company);
    let mut keys = vec![
        shared.keys.meta(company),
        shared.keys.idempotency(company, key.map_or("", IdempotencyKey::key)),
        shared.keys.idempotency_index(company),
        shared.keys.publish_rate(company),
    ];
    let mut args: Vec<Vec<u8>> = vec![
        tenant.history_size.to_string().into_bytes(),
        tenant
            .history_max_age
            .map_or(0, |d| d.as_millis() as u64)
            .to_string()
            .into_bytes(),
        key.map_or(0, |_| history.idempotency_ttl.as_millis().max(1) as u64)
            .to_string()
            .into_bytes(),
        key.map_or(String::new(), |k| URL_SAFE_NO_PAD.encode(k.digest()))
            .into_bytes(),
        history.idempotency_keys_per_company.to_string().into_bytes(),
        meter.map_or(0.0, |m| m.rate).to_string().into_bytes(),
        meter.map_or(0.0, |m| m.burst).to_string().into_bytes(),
        shared.notify_channel().into_bytes(),
    ];
    let mut channels: Vec<&str> = Vec::new();
    for (channel, kind, data) in events {
        let index = match channels.iter().position(|c| c == channel) {
            Some(i) => i,
            None => {
                channels.push(channel);
                keys.push(shared.keys.stream(company, channel));
                channels.len() - 1
            }
        };
        args.push(index.to_string().into_bytes());
        args.push(kind.as_bytes().to_vec());
        args.push(data.get().as_bytes().to_vec());
    }
    let failed = |e: redis::RedisError| {
        shared.status.publish_failed();
        shared.unavailable(&e)
    };
    let (mut reply, acked) = match run_publish(shared, &keys, &args, false).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            // Redis restarted or failed over (a promoted replica never had the script):
            // run it by its text, which also caches it where the company lives.
            run_publish(shared, &keys, &args, true).await.map_err(failed)?
        }
        other => other.map_err(failed)?,
    };
    let status = if reply.is_empty() {
        String::new()
    } else {
        reply.remove(0)
    };
    let published = match status.as_str() {
        "ok" | "replay" if !reply.is_empty() => Published {
            ids: reply,
            replayed: status == "replay",
        },
        "reused" => return Err(PublishError::KeyReused.into()),
        "rate_limited" => return Err(BackendError::RateLimited),
        _ => {
            return Err(BackendError::Unavailable(format!(
                "the publish script answered {status:?}"
            )))
        }
    };
    let wanted = shared.settings.min_replicas_ack;
    if let Some(acked) = acked.filter(|a| *a < u64::from(wanted)) {
        shared.status.publish_failed();
        return Err(BackendError::NotReplicated { acked, wanted });
    }
    Ok(published)
}

/// The publish script (by hash, or `by_text` for a Redis that does not know it), and
/// `WAIT` when replicas must confirm; the script's reply and how many replicas confirmed
/// (`None`: not asked).
async fn run_publish(
    shared: &Shared,
    keys: &[String],
    args: &[Vec<u8>],
    by_text: bool,
) -> redis::RedisResult<(Vec<String>, Option<u64>)> {
    let mut eval = if by_text {
        let mut c = redis::cmd("EVAL");
        c.arg(&shared.scripts.publish_source);
        c
    } else {
        let mut c = redis::cmd("EVALSHA");
        c.arg(shared.scripts.publish.get_hash());
        c
    };
    eval.arg(keys.len()).arg(keys).arg(args);
    let wanted = shared.settings.min_replicas_ack;
    let mut conn = shared.publish_conn();
    if wanted == 0 {
        let reply: Vec<String> = eval.query_async(&mut conn).await?;
        return Ok((reply, None));
    }
    let mut pipe = redis::pipe();
    pipe.add_command(eval)
        .cmd("WAIT")
        .arg(wanted)
        .arg(shared.settings.min_replicas_timeout.as_millis() as u64);
    let (reply, acked): (Vec<String>, u64) = pipe.query_async(&mut conn).await?;
    Ok((reply, Some(acked)))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn entries_written_by_someone_else_never_reach_the_wire_unchecked() {
        assert!(decode("1700000000000-1", "dashboard-updates", "update", "{\"a\":1}").is_some());
        for kind in ["x\ndata: forged", "x\revent: other", "", "has space", &"k".repeat(65)] {
            assert!(decode("1700000000000-1", "c", kind, "{}").is_none(), "type {kind:?}");
        }
        for id in ["1-1\nid: 9", "abc", "1700000000000-1 "] {
            assert!(decode(id, "c", "update", "{}").is_none(), "id {id:?}");
        }
        assert!(decode("1700000000000-1", "c", "update", "not json\n\ndata: x").is_none());
    }
}
