//! Events and their IDs.
//!
//! An ID is `<epoch>-<seq>`: `epoch` is random per hub instance, so an ID from before a
//! restart is recognised and answered with `reset`; `seq` comes from one counter shared
//! by every channel and is assigned under the company's lock, so within a company the
//! IDs of all channels are totally ordered. That is what lets one cursor resume a
//! subscription to several channels.

use bytes::Bytes;
use serde_json::value::RawValue;

use super::sse;

/// A published event. Encoded once; the frame is shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// Position in the memory hub's sequence (0 for events from Redis).
    pub seq: u64,
    /// Position in the company's total order (the memory sequence, or the Redis stream
    /// ID as `ms << 64 | seq`).
    pub order: u128,
    /// The wire ID (`<epoch>-<seq>`).
    pub id: String,
    /// The channel it was published to.
    pub channel: String,
    /// The event type (`event:` field).
    pub kind: String,
    /// The JSON payload, compact.
    pub data: Box<RawValue>,
    /// Publish time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The encoded SSE frame.
    pub frame: Bytes,
}

impl Event {
    /// An event sequenced elsewhere (the Redis backend): `id` is its stream ID and
    /// `seq` is unused (0), since ordering is the caller's job.
    pub fn external(
        id: String,
        order: u128,
        channel: &str,
        kind: &str,
        data: Box<RawValue>,
        timestamp_ms: u64,
    ) -> Self {
        let frame = sse::event_frame(Some(&id), Some(kind), data.get());
        Self {
            seq: 0,
            order,
            id,
            channel: channel.to_owned(),
            kind: kind.to_owned(),
            data,
            timestamp_ms,
            frame,
        }
    }

    pub(crate) fn new(
        epoch: &str,
        seq: u64,
        channel: &str,
        kind: &str,
        data: Box<RawValue>,
        timestamp_ms: u64,
    ) -> Self {
        Self {
            seq,
            ..Self::external(
                format_id(epoch, seq),
                u128::from(seq),
                channel,
                kind,
                data,
                timestamp_ms,
            )
        }
    }
}

/// Formats an event ID.
pub fn format_id(epoch: &str, seq: u64) -> String {
    format!("{epoch}-{seq}")
}

/// What a client-supplied resume ID means to this hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Resume after this sequence number.
    After(u64),
    /// The ID was issued by another hub instance (before a restart).
    OtherEpoch,
    /// Not an ID this product issues.
    Unknown,
}

/// Interprets a resume ID against the hub's `epoch`.
pub fn parse_cursor(id: &str, epoch: &str) -> Cursor {
    let Some((e, seq)) = id.rsplit_once('-') else {
        return Cursor::Unknown;
    };
    match seq.parse::<u64>() {
        Ok(seq) if e == epoch => Cursor::After(seq),
        Ok(_) if is_epoch(e) => Cursor::OtherEpoch,
        _ => Cursor::Unknown,
    }
}

/// Epochs are 8 lowercase hex digits.
pub fn is_epoch(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a subscriber was told to reset its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The resume ID is older than the retained history.
    TooOld,
    /// The resume ID was issued before the host restarted.
    Restarted,
    /// The resume ID is malformed or from the future.
    UnknownId,
    /// The subscriber fell too far behind and was disconnected.
    SlowConsumer,
}

impl ResetReason {
    /// Every reason, in the order counters keep them.
    pub const ALL: [Self; 4] = [Self::TooOld, Self::Restarted, Self::UnknownId, Self::SlowConsumer];

    /// This reason's place in [`ResetReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

// `index` relies on the declaration order matching `ALL`.
const _: () = {
    let mut i = 0;
    while i < ResetReason::ALL.len() {
        assert!(ResetReason::ALL[i] as usize == i);
        i += 1;
    }
};

impl ResetReason {
    /// The `reason` field of the `reset` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooOld => "too_old",
            Self::Restarted => "restarted",
            Self::UnknownId => "unknown_id",
            Self::SlowConsumer => "slow_consumer",
        }
    }
}

/// The `reset` event: the client must refetch its state, then continue from this ID.
pub fn reset_frame(epoch: &str, head: u64, reason: ResetReason) -> Bytes {
    reset_frame_at(&format_id(epoch, head), reason)
}

/// The `reset` event carrying an explicit ID (the Redis backend's stream IDs).
pub fn reset_frame_at(id: &str, reason: ResetReason) -> Bytes {
    let data = serde_json::json!({ "reason": reason.as_str(), "lastEventId": id }).to_string();
    sse::event_frame(Some(id), Some("reset"), &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("0000ab12-7", "0000ab12"), Cursor::After(7));
        assert_eq!(parse_cursor("ffff0000-7", "0000ab12"), Cursor::OtherEpoch);
        assert_eq!(parse_cursor("event-123", "0000ab12"), Cursor::Unknown);
        assert_eq!(parse_cursor("7", "0000ab12"), Cursor::Unknown);
        assert_eq!(parse_cursor("0000ab12--1", "0000ab12"), Cursor::Unknown);
    }
}
