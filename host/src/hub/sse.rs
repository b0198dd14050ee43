//! The text/event-stream wire format (WHATWG HTML, "Server-sent events"). Pure functions:
//! every frame is encoded once and the same `Bytes` is shared by all subscribers.

use bytes::{BufMut, Bytes, BytesMut};

/// Encodes one event. `data` is split on CR, LF and CRLF into several `data:` lines so a
/// payload can never end the frame early or inject fields. `id` and `kind` must already
/// be validated (no CR/LF): see [`is_valid_event_type`].
pub fn event_frame(id: Option<&str>, kind: Option<&str>, data: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 64);
    if let Some(id) = id {
        field(&mut buf, "id", id);
    }
    if let Some(kind) = kind {
        field(&mut buf, "event", kind);
    }
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        field(&mut buf, "data", line);
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

/// A comment line (`: text`), which clients ignore; used for heartbeats.
pub fn comment_frame(text: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", text.replace(['\r', '\n'], " ")))
}

/// A `retry:` line telling the client how long to wait before reconnecting.
pub fn retry_frame(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

fn field(buf: &mut BytesMut, name: &str, value: &str) {
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value.as_bytes());
    buf.put_u8(b'\n');
}

/// Event type names: 1-64 characters from `[A-Za-z0-9_.:-]`, so they cannot carry CR/LF
/// or look like another field.
pub fn is_valid_event_type(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_with_id_type_and_data() {
        let f = event_frame(Some("e-1"), Some("dashboard-update"), r#"{"a":1}"#);
        assert_eq!(&f[..], b"id: e-1\nevent: dashboard-update\ndata: {\"a\":1}\n\n");
    }

    #[test]
    fn multi_line_data_becomes_several_data_lines() {
        let f = event_frame(None, None, "a\nb\r\nc\rd");
        assert_eq!(&f[..], b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn comments_cannot_break_out() {
        assert_eq!(&comment_frame("x\n\ndata: evil")[..], b": x  data: evil\n\n");
    }

    #[test]
    fn event_types_are_restricted() {
        assert!(is_valid_event_type("report-ready"));
        assert!(!is_valid_event_type(""));
        assert!(!is_valid_event_type("a\nid: 5"));
        assert!(!is_valid_event_type("with space"));
        assert!(!is_valid_event_type(&"x".repeat(65)));
    }
}
