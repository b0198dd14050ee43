//! One subscriber's bounded queue of encoded frames.
//!
//! Publishers push shared `Bytes` under the company lock and never wait: a subscriber
//! whose queue is full is marked as a slow consumer and told to reset, so it can neither
//! stall the others nor grow memory without bound. The response body drains the whole
//! queue in one write (coalescing).

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

/// The queue shared by the hub (producer) and the response body (consumer).
#[derive(Debug)]
pub struct Subscriber {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// Last frame to send before ending the stream (reset, retry hint).
    closing: Option<Bytes>,
    ended: bool,
    waker: Option<Waker>,
    /// Highest event order queued (or replayed): events at or below it are duplicates.
    /// Only the Redis backend's deliveries use it; it makes re-reads harmless.
    through: u128,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// The queue was full: the subscriber is now closing as a slow consumer.
    Overflowed,
    /// The subscriber is already closing; the frame was dropped.
    Closed,
    /// The event was already queued or replayed; dropped.
    Duplicate,
}

/// What the body gets next.
#[derive(Debug)]
pub enum Next {
    /// Frames to write (possibly several coalesced), and how many events they hold.
    Data(Bytes, usize),
    /// The final frame; the stream ends after it.
    Last(Bytes),
    /// The stream is over.
    End,
}

/// Largest single write when coalescing.
const MAX_COALESCED_BYTES: usize = 64 * 1024;

impl Subscriber {
    /// A subscriber that holds at most `capacity` pending frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Marks every event up to `order` as already sent (the replay covered them).
    pub fn set_through(&self, order: u128) {
        let mut s = self.state.lock();
        s.through = s.through.max(order);
    }

    /// Queues an event's frame unless an event at or after `order` was already queued.
    pub fn push_event(&self, order: u128, frame: Bytes, on_overflow: impl FnOnce() -> Bytes) -> Push {
        {
            let mut s = self.state.lock();
            if order <= s.through {
                return Push::Duplicate;
            }
            s.through = order;
        }
        self.push(frame, on_overflow)
    }

    /// Queues a frame; on overflow, drops what is queued and closes with `on_overflow`.
    pub fn push(&self, frame: Bytes, on_overflow: impl FnOnce() -> Bytes) -> Push {
        let mut s = self.state.lock();
        if s.closing.is_some() || s.ended {
            return Push::Closed;
        }
        let result = if s.frames.len() >= self.capacity {
            s.frames = VecDeque::new();
            s.closing = Some(on_overflow());
            Push::Overflowed
        } else {
            s.frames.push_back(frame);
            Push::Queued
        };
        if let Some(w) = s.waker.take() {
            drop(s);
            w.wake();
        }
        result
    }

    /// Ends the stream after the queued frames and `last`, unless it is already closing.
    pub fn close(&self, last: Bytes) {
        let mut s = self.state.lock();
        if s.closing.is_none() && !s.ended {
            s.closing = Some(last);
        }
        if let Some(w) = s.waker.take() {
            drop(s);
            w.wake();
        }
    }

    /// True once the subscriber was told to close.
    pub fn is_closing(&self) -> bool {
        let s = self.state.lock();
        s.closing.is_some() || s.ended
    }

    /// Polls for the next write.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut s = self.state.lock();
        if s.ended {
            return Poll::Ready(Next::End);
        }
        if !s.frames.is_empty() {
            let n = s.frames.len();
            if n == 1 {
                let f = s.frames.pop_front().expect("one frame");
                return Poll::Ready(Next::Data(f, 1));
            }
            let mut buf = BytesMut::new();
            let mut count = 0;
            while let Some(f) = s.frames.front() {
                if count > 0 && buf.len() + f.len() > MAX_COALESCED_BYTES {
                    break;
                }
                buf.extend_from_slice(f);
                s.frames.pop_front();
                count += 1;
            }
            if s.frames.is_empty() {
                s.frames = VecDeque::new(); // give a drained burst's memory back
            }
            return Poll::Ready(Next::Data(buf.freeze(), count));
        }
        if let Some(last) = s.closing.take() {
            s.ended = true;
            return Poll::Ready(Next::Last(last));
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll(s: &Subscriber) -> Poll<Next> {
        s.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn pending_frames_are_coalesced_into_one_write() {
        let s = Subscriber::new(8);
        for f in ["a", "b", "c"] {
            assert_eq!(s.push(Bytes::from(f), || unreachable!()), Push::Queued);
        }
        match poll(&s) {
            Poll::Ready(Next::Data(b, 3)) => assert_eq!(&b[..], b"abc"),
            other => panic!("{other:?}"),
        }
        assert!(poll(&s).is_pending());
    }

    #[test]
    fn overflow_replaces_the_backlog_with_the_closing_frame() {
        let s = Subscriber::new(2);
        s.push(Bytes::from("1"), || unreachable!());
        s.push(Bytes::from("2"), || unreachable!());
        assert_eq!(s.push(Bytes::from("3"), || Bytes::from("reset")), Push::Overflowed);
        assert_eq!(s.push(Bytes::from("4"), || unreachable!()), Push::Closed);
        assert!(matches!(poll(&s), Poll::Ready(Next::Last(b)) if &b[..] == b"reset"));
        assert!(matches!(poll(&s), Poll::Ready(Next::End)));
    }

    #[test]
    fn events_at_or_below_the_high_mark_are_dropped_as_duplicates() {
        let s = Subscriber::new(8);
        s.set_through(10);
        assert_eq!(s.push_event(9, Bytes::from("old"), || unreachable!()), Push::Duplicate);
        assert_eq!(
            s.push_event(10, Bytes::from("replayed"), || unreachable!()),
            Push::Duplicate
        );
        assert_eq!(s.push_event(11, Bytes::from("a"), || unreachable!()), Push::Queued);
        assert_eq!(
            s.push_event(11, Bytes::from("again"), || unreachable!()),
            Push::Duplicate
        );
        assert_eq!(s.push_event(12, Bytes::from("b"), || unreachable!()), Push::Queued);
        match poll(&s) {
            Poll::Ready(Next::Data(bytes, 2)) => assert_eq!(&bytes[..], b"ab"),
            other => panic!("expected the two new frames, got {other:?}"),
        }
    }

    #[test]
    fn close_delivers_queued_frames_first() {
        let s = Subscriber::new(4);
        s.push(Bytes::from("e"), || unreachable!());
        s.close(Bytes::from("retry"));
        assert!(matches!(poll(&s), Poll::Ready(Next::Data(_, 1))));
        assert!(matches!(poll(&s), Poll::Ready(Next::Last(_))));
    }
}
