//! Calls of the publish and replay scripts, and decoding of what they return.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::keys::StreamId;
use super::{BackendError, Shared};
use crate::hub::event::{Event, ResetReason};
use crate::hub::NewEvent;

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

/// Runs the replay script for (company, channels) after `cursor` up to the company's
/// head, at most `count` events per stream (0: all), and merges the streams in ID order.
pub(crate) async fn read(
    shared: &Shared,
    company: &str,
    channels: &[String],
    cursor: Cursor,
    count: usize,
) -> Result<Replay, BackendError> {
    let mut invocation = shared.scripts.replay.key(shared.keys.meta(company));
    for ch in channels {
        invocation.key(shared.keys.stream(company, ch));
    }
    let after = match cursor {
        Cursor::After(id) => id.to_string(),
        Cursor::Head | Cursor::Invalid => String::new(),
    };
    invocation.arg(after).arg("+").arg(count);
    let (status, head, flat): (String, String, Vec<String>) = invocation
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(|e| shared.unavailable(&e))?;
    let head = StreamId::parse(&head).unwrap_or_default();
    let reset = match (status.as_str(), cursor) {
        (_, Cursor::Invalid) | ("unknown_id", _) => Some(ResetReason::UnknownId),
        ("too_old", _) => Some(ResetReason::TooOld),
        _ => None,
    };
    let mut events = Vec::with_capacity(flat.len() / 4);
    for e in flat.chunks_exact(4) {
        let channel = e[0].parse::<usize>().ok().and_then(|i| channels.get(i));
        if let Some(event) = channel.and_then(|ch| decode(&e[1], ch, &e[2], &e[3])) {
            events.push(Arc::new(event));
        }
    }
    if channels.len() > 1 {
        events.sort_unstable_by_key(|e| e.order);
    }
    Ok(Replay { head, events, reset })
}

/// Builds an event from a stream entry; `None` (logged) for an entry we did not write.
pub(crate) fn decode(id: &str, channel: &str, kind: &str, data: &str) -> Option<Event> {
    let parsed = StreamId::parse(id)?;
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

/// Runs the publish script: all events of one company, atomically, in order.
pub(crate) async fn publish(
    shared: &Shared,
    company: &str,
    events: &[NewEvent<'_>],
) -> Result<Vec<String>, BackendError> {
    let mut channels: Vec<&str> = Vec::new();
    let mut invocation = shared.scripts.publish.key(shared.keys.meta(company));
    let history = &shared.hub.settings();
    invocation
        .arg(history.history_size)
        .arg(history.history_max_age.map_or(0, |d| d.as_millis() as u64));
    for (channel, kind, data) in events {
        let index = match channels.iter().position(|c| c == channel) {
            Some(i) => i,
            None => {
                channels.push(channel);
                invocation.key(shared.keys.stream(company, channel));
                channels.len() - 1
            }
        };
        invocation.arg(index).arg(*kind).arg(data.get());
    }
    invocation.invoke_async(&mut shared.conn.clone()).await.map_err(|e| {
        shared.status.publish_failed();
        shared.unavailable(&e)
    })
}
