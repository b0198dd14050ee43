//! The HTTP/1.1 stream fast path: `GET {prefix}/stream` served without hyper's
//! connection state machine.
//!
//! Why: an idle SSE stream should cost little more than its subscription. hyper keeps an
//! 8 KiB read buffer (to notice the client leaving mid-response) and an 8 KiB header
//! write buffer for the life of every HTTP/1 connection; on a host holding 15,000 idle
//! streams that was most of the 13.4 KiB per stream measured with `sse-bench`. Here the
//! request head is parsed by `httparse` (hyper's own parser) from a buffer freed right
//! after, the request goes through exactly the same routing, edge and hub code as every
//! other request, and the response is written as chunked HTTP/1.1 straight from the
//! subscriber's coalesced frames. A client leaving is noticed through socket readiness
//! with a 64-byte stack buffer (over TLS, by a read of at most 64 bytes between writes).
//! Everything else (other routes, HTTP/2, HTTP/1.0, heads that do not fit) stays with
//! hyper, which also answers any request this path refuses to parse.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::head::{MAX_HEADERS, MAX_HEAD_BYTES};
use super::reply::Body;
use super::routes;
use super::server::HandshakePermit;
use super::wasm::ConnInfo;
use crate::config::HostConfig;
use crate::state::AppState;

/// `GET {prefix}/stream`, what a fast-path request starts with; empty when the fast path
/// is off (`stream.http1_fast_path`).
pub(crate) fn stream_start(config: &HostConfig) -> Vec<u8> {
    if config.stream.http1_fast_path {
        format!("GET {}/stream", config.policy.routes.prefix).into_bytes()
    } else {
        Vec::new()
    }
}

/// What the sniffing hands the fast path. Boxed into [`serve`]: an async fn keeps its
/// arguments for its whole life (hours, for a stream), and these are needed only until
/// the response starts; every byte kept per idle stream counts.
pub(crate) struct Opening {
    /// The host.
    pub(crate) state: Arc<AppState>,
    /// Who is connected.
    pub(crate) conn: ConnInfo,
    /// The bytes the sniffing read.
    pub(crate) seen: Vec<u8>,
    /// The connection's handshake place, given back once the head is read.
    pub(crate) permit: HandshakePermit,
    /// When the head must be complete (shared with the sniffing).
    pub(crate) deadline: Instant,
}

/// A connection the fast path can serve: plain TCP or TLS.
pub(crate) trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits until the client sends something or leaves; true when it left. Anything it
    /// sends after its request is read and discarded.
    async fn client_gone(&mut self) -> bool;
}

impl Conn for TcpStream {
    /// Socket readiness, then a non-blocking read into 64 bytes on the stack: no read
    /// buffer is held while the stream idles.
    async fn client_gone(&mut self) -> bool {
        if self.readable().await.is_err() {
            return true;
        }
        let mut scratch = [0u8; 64];
        match self.try_read(&mut scratch) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

impl Conn for tokio_rustls::server::TlsStream<TcpStream> {
    /// A read of at most 64 bytes (TLS records must be decrypted to be seen). Cancelled
    /// whenever a frame is ready to write, which loses nothing: tokio-rustls reads are
    /// cancel-safe.
    async fn client_gone(&mut self) -> bool {
        let mut scratch = [0u8; 64];
        !matches!(self.read(&mut scratch).await, Ok(n) if n > 0)
    }
}

/// Serves one stream request on `stream`, then closes the connection.
pub(crate) async fn serve<S: Conn>(mut stream: S, opening: Box<Opening>) {
    let Opening {
        state,
        conn,
        seen,
        permit,
        deadline,
    } = super::unbox(opening);
    // The request phase's futures are boxed: the task that stays alive for the stream is
    // sized by its largest state, and routing (edge filters, publish, poll) is big.
    let head = tokio::time::timeout_at(deadline, Box::pin(read_head(&mut stream, seen))).await;
    drop(permit);
    let req = match head {
        Ok(Ok(req)) => req,
        Ok(Err(status)) => {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            let reply = format!("HTTP/1.1 {status}\r\ndate: {date}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes()).await;
            return;
        }
        Err(_) => return,
    };
    let version = req.version();
    let res = match Box::pin(routes::handle(state, req, conn)).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let connection = conn.id;
    if let Err(e) = write_response(&mut stream, res, version).await {
        tracing::debug!(connection, "stream connection ended: {e}");
    }
    let _ = stream.shutdown().await;
}

/// Reads and parses the request head, starting with the bytes already `seen`; the read
/// buffer is dropped before returning.
async fn read_head<S: Conn>(stream: &mut S, seen: Vec<u8>) -> Result<Request<Empty<Bytes>>, &'static str> {
    // A fresh 1 KiB buffer rather than growing `seen`: growing it by 1 KiB would land in
    // jemalloc's next size class for every connection.
    let mut buf = Vec::with_capacity(1024.max(seen.len()));
    buf.extend_from_slice(&seen);
    drop(seen);
    // What was seen is parsed before anything more is read (it may be a whole head).
    let mut read_first = buf.is_empty();
    loop {
        if read_first {
            let n = stream.read_buf(&mut buf).await.map_err(|_| "400 Bad Request")?;
            if n == 0 {
                return Err("400 Bad Request");
            }
        }
        read_first = true;
        match parse_head(&buf) {
            Head::Complete(req) => return Ok(req),
            Head::Partial => continue,
            Head::Refused(status) => return Err(status),
        }
    }
}

/// What the bytes of a request head read so far amount to.
#[allow(clippy::large_enum_variant)] // returned once per head and unpacked at once; boxing costs an allocation
pub(crate) enum Head {
    /// A whole head: the request, without a body.
    Complete(Request<Empty<Bytes>>),
    /// Not all there yet, and still under the size limit: read more.
    Partial,
    /// Refused with this status line (malformed, too large, too many headers).
    Refused(&'static str),
}

/// Parses the head in `buf` (no I/O: the fuzz target drives this directly).
pub(crate) fn parse_head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        // However it arrived (one read may bring more than the limit), a head past the
        // limit is refused, as hyper refuses it.
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => Head::Refused("431 Request Header Fields Too Large"),
        Ok(httparse::Status::Complete(_)) => match build(&parsed) {
            Ok(req) => Head::Complete(req),
            Err(status) => Head::Refused(status),
        },
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => Head::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            Head::Refused("431 Request Header Fields Too Large")
        }
        Err(_) => Head::Refused("400 Bad Request"),
    }
}

fn build(parsed: &httparse::Request<'_, '_>) -> Result<Request<Empty<Bytes>>, &'static str> {
    let bad = "400 Bad Request";
    // The sniffing only sends `GET` here; anything else would be served as a GET.
    if parsed.method != Some("GET") {
        return Err(bad);
    }
    let uri: Uri = parsed.path.ok_or(bad)?.parse().map_err(|_| bad)?;
    let mut req = Request::new(Empty::new());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    *req.version_mut() = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let headers = req.headers_mut();
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad)?;
        headers.append(name, value);
    }
    Ok(req)
}

/// Writes the response head, then the body: with its length when known, else chunked
/// (HTTP/1.1) or delimited by the close (HTTP/1.0); ends early when the client leaves.
async fn write_response<S: Conn>(stream: &mut S, res: Response<Body>, version: Version) -> std::io::Result<()> {
    let (parts, mut body) = res.into_parts();
    let length = http_body::Body::size_hint(&body).exact();
    let chunked = length.is_none() && version == Version::HTTP_11;
    let mut head = Vec::with_capacity(512);
    let reason = parts.status.canonical_reason().unwrap_or("");
    head.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_u16()).as_bytes());
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(DATE) {
        // What hyper adds to every response, so both paths send the same head.
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(n) = length {
        head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
    } else if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    drop(parts); // not kept for the life of the stream
    stream.write_all(&head).await?;
    drop(head);
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            gone = stream.client_gone() => {
                if gone {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(Ok(frame)) = frame else { break };
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let mut size = [0u8; 18];
            let size = chunk_size_line(data.len(), &mut size);
            let mut chunk = Buf::chain(Buf::chain(size, data), &b"\r\n"[..]);
            stream.write_all_buf(&mut chunk).await?;
        } else {
            stream.write_all(&data).await?;
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// `<hex length>\r\n` in `buf`, without allocating (this runs for every write of every
/// stream).
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 16;
    let mut n = len;
    loop {
        start -= 1;
        buf[start] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::chunk_size_line;

    #[test]
    fn chunk_sizes_are_hex_lines() {
        let mut buf = [0u8; 18];
        for (len, line) in [(0, "0\r\n"), (10, "a\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            assert_eq!(chunk_size_line(len, &mut buf), line.as_bytes());
        }
        assert_eq!(chunk_size_line(usize::MAX, &mut buf), b"ffffffffffffffff\r\n");
    }
}
