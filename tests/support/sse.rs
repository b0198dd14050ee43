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
    /// Bytes not yet framed. Framing is done on bytes and each block decoded whole: a
    /// read may end inside a multi-byte character, a block never does.
    buf: Vec<u8>,
    pending: std::collections::VecDeque<Frame>,
    /// Every frame read so far, in order.
    pub seen: Vec<Frame>,
}

impl SseStream {
    pub fn new(res: reqwest::Response) -> Self {
        Self {
            res,
            buf: Vec::new(),
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
                    self.buf.extend_from_slice(&bytes);
                    take_frames(&mut self.buf, &mut self.pending);
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

/// Moves every complete block at the start of `buf` to `out`, as frames.
fn take_frames(buf: &mut Vec<u8>, out: &mut std::collections::VecDeque<Frame>) {
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let block: Vec<u8> = buf.drain(..end + 2).collect();
        let block = String::from_utf8(block).expect("an event-stream block is UTF-8");
        out.extend(parse_block(&block));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` to a framer in reads of `step` bytes.
    fn frames_in_reads(bytes: &[u8], step: usize) -> Vec<Frame> {
        let mut buf = Vec::new();
        let mut out = std::collections::VecDeque::new();
        for chunk in bytes.chunks(step) {
            buf.extend_from_slice(chunk);
            take_frames(&mut buf, &mut out);
        }
        out.into()
    }

    #[test]
    fn a_character_split_across_reads_is_decoded_whole() {
        let stream = "id: 1\nevent: x\ndata: {\"t\":\"\u{2713} caf\u{e9} \u{1F600}\"}\n\n: hb\n\n".as_bytes();
        let whole = frames_in_reads(stream, stream.len());
        assert_eq!(whole.len(), 2);
        for step in 1..8 {
            assert_eq!(frames_in_reads(stream, step), whole, "reads of {step} bytes");
        }
    }
}
