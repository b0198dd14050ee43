//! A small event-stream reader over a streaming HTTP response, for assertions.

use std::time::Duration;

use serde_json::Value;

use crate::PATIENCE;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// One block between blank lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Event(SseEvent),
    Comment(String),
    Retry(u64),
}

/// Reads frames as they arrive.
pub struct SseStream {
    res: reqwest::Response,
    buf: String,
    pending: std::collections::VecDeque<Frame>,
    /// Every frame read so far, in order.
    pub seen: Vec<Frame>,
}

impl SseStream {
    pub fn new(res: reqwest::Response) -> Self {
        Self {
            res,
            buf: String::new(),
            pending: Default::default(),
            seen: Vec::new(),
        }
    }

    /// The next frame, `None` when the stream ended; fails the test after `PATIENCE`.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(PATIENCE)
            .await
            .expect("no frame within the patience")
    }

    /// The next frame within `wait`: `Err(())` on timeout, `Ok(None)` at the end.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(f) = self.pending.pop_front() {
                self.seen.push(f.clone());
                return Ok(Some(f));
            }
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Err(_) => return Err(()),
                Ok(Err(_)) | Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(bytes))) => {
                    self.buf.push_str(std::str::from_utf8(&bytes).expect("utf-8 stream"));
                    while let Some(end) = self.buf.find("\n\n") {
                        let block: String = self.buf.drain(..end + 2).collect();
                        if let Some(f) = parse_block(&block) {
                            self.pending.push_back(f);
                        }
                    }
                }
            }
        }
    }

    /// The next event (skipping comments and bare `retry:`), failing if the stream ends.
    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            match self.next_frame().await {
                Some(Frame::Event(e)) => return e,
                Some(_) => continue,
                None => panic!("stream ended while waiting for an event; seen: {:?}", self.seen),
            }
        }
    }

    /// Reads until the stream ends; returns the events seen on the way.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await {
            if let Frame::Event(e) = f {
                out.push(e);
            }
        }
        out
    }
}

fn parse_block(block: &str) -> Option<Frame> {
    let mut id = None;
    let mut event = None;
    let mut data: Option<Vec<&str>> = None;
    let mut retry = None;
    let mut comment = None;
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            comment = Some(c.trim().to_owned());
            continue;
        }
        let (field, value) = line
            .split_once(':')
            .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.get_or_insert_with(Vec::new).push(value),
            "retry" => retry = value.parse().ok(),
            _ => {}
        }
    }
    if let Some(data) = data {
        let data = data.join("\n");
        return Some(Frame::Event(SseEvent {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data,
        }));
    }
    if let Some(r) = retry {
        return Some(Frame::Retry(r));
    }
    comment.map(Frame::Comment)
}
