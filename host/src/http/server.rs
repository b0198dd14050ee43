//! The accept loop: HTTP/1.1 and HTTP/2 with prior knowledge (h2c, what Envoy's upstream
//! speaks) on one port, or, with `[tls]`, TLS with ALPN h2 / http/1.1; graceful shutdown
//! of every connection.
//!
//! Over TLS the HTTP/1.1 stream fast path (`fast.rs`) works as over TCP, noticing a
//! departed client by a read between writes instead of socket readiness.
//!
//! Each connection is served by hyper's HTTP/1 or HTTP/2 connection type alone, chosen by
//! peeking at the client preface. (hyper-util's `auto` connection carries both state
//! machines in every task: 22.9 KiB per idle SSE stream against 15.2 KiB this way, with
//! `sse-bench --idle 5000`.)

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use hyper_util::server::graceful::Watcher;

use super::prefixed::Prefixed;
use super::tls::{serve_tls, TlsConnection};
use super::wasm::ConnInfo;
use super::{fast, h2, head, routes};
use crate::hub::limits::{ConnectionLimits, Slot};
use crate::state::AppState;
use crate::tls::CertStore;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a new connection speaks, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// The HTTP/2 client preface (h2c with prior knowledge: Envoy's upstream).
    H2,
    /// An HTTP/1.x `GET {prefix}/stream`: the fast path (`fast.rs`).
    Stream,
    /// Anything else: hyper HTTP/1.
    Http1,
}

/// Which server `seen` (a connection's first bytes) needs, or `None` while more bytes
/// could still change the answer. `stream_start` is `GET {prefix}/stream` when the fast
/// path is on, empty when it is off.
fn decide(seen: &[u8], stream_start: &[u8]) -> Option<Protocol> {
    if seen.len() >= H2_PREFACE.len() {
        if seen.starts_with(H2_PREFACE) {
            return Some(Protocol::H2);
        }
    } else if H2_PREFACE.starts_with(seen) {
        return None;
    }
    if stream_start.is_empty() {
        return Some(Protocol::Http1);
    }
    let n = seen.len().min(stream_start.len());
    if seen[..n] != stream_start[..n] {
        return Some(Protocol::Http1);
    }
    match seen.get(stream_start.len()) {
        None => None,
        Some(b'?' | b' ') => Some(Protocol::Stream),
        Some(_) => Some(Protocol::Http1),
    }
}

/// Reads a connection's first bytes until they tell which server it needs; returns the
/// answer and the bytes read, which that server reads again. Each read waits for new
/// bytes (no polling): a client that sends part of the HTTP/2 preface or of a stream
/// request and stops costs one pending read until `deadline`, then is dropped, as is one
/// that closes or sends nothing.
pub(super) async fn sniff<S: AsyncRead + Unpin>(
    stream: &mut S,
    stream_start: &[u8],
    deadline: Instant,
) -> Option<(Protocol, Vec<u8>)> {
    let read = async {
        // Enough to decide in every case: `decide` answers once this is full.
        let mut buf = vec![0u8; H2_PREFACE.len().max(stream_start.len() + 1)];
        let mut len = 0;
        loop {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if let Some(protocol) = decide(&buf[..len], stream_start) {
                buf.truncate(len);
                return Some((protocol, buf));
            }
        }
    };
    tokio::time::timeout_at(deadline, read).await.ok().flatten()
}

/// What a connection's task starts with.
struct Start {
    stream: TcpStream,
    /// What a fast-path request starts with (`fast::stream_start`), made once.
    stream_start: Arc<[u8]>,
    state: Arc<AppState>,
    conn: ConnInfo,
    permit: HandshakePermit,
    /// HTTP/1 connections served by hyper are watched by its graceful shutdown.
    watcher: Watcher,
    /// Fast-path streams and HTTP/2 connections hold a clone until they end; shutdown
    /// waits for every clone.
    done: mpsc::Sender<()>,
}

type Served = Result<(), hyper::Error>;

/// A connection's place among those still sending their first request, at most
/// `http.max_handshaking` in all and `http.max_handshaking_per_peer` from one address (so
/// one client holding silent connections cannot lock everyone else out).
pub(crate) type HandshakePermit = Slot<IpAddr>;

/// An HTTP/1 connection served by hyper; handshaking, holding `permit`, until its first
/// request head is complete (hyper's header timeout ends it otherwise).
pub(super) async fn serve_http1<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    seen: Vec<u8>,
    state: Arc<AppState>,
    conn: ConnInfo,
    deadline: Instant,
    permit: HandshakePermit,
    watcher: Watcher,
) -> Served {
    let head_timeout = state.config.http.head_timeout;
    let permit = Mutex::new(Some(permit));
    let service = service_fn(move |req| {
        drop(permit.lock().take());
        routes::handle(state.clone(), req, conn)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head::remaining(deadline, head_timeout))
        .max_buf_size(head::MAX_HEAD_BYTES);
    let io = TokioIo::new(Prefixed::new(seen, stream));
    watcher.watch(builder.serve_connection(io, service)).await
}

/// Serves until `shutdown` resolves, then stops accepting, asks every connection to
/// finish and waits up to the configured grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    let graceful = GracefulShutdown::new();
    // Fast-path streams and HTTP/2 connections hold a clone; shutdown waits until every
    // clone is gone.
    let (done, mut all_done) = mpsc::channel::<()>(1);
    let mut next_conn_id: u64 = 0;
    let http = &state.config.http;
    // Connections that have not sent a whole first request head yet: each holds a permit
    // until it has, so silent or trickling clients cannot pile up without bound.
    let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let stream_start: Arc<[u8]> = fast::stream_start(&state.config).into();
    let handshakes =
        ConnectionLimits::<IpAddr>::new(as_u32(http.max_handshaking_per_peer), as_u32(http.max_handshaking));
    let tls = state.config.tls.as_ref().map(|t| {
        let store = CertStore::new(t.cert_file.clone(), t.key_file.clone(), t.initial.clone());
        (
            store.acceptor(),
            tokio::spawn(store.watch(t.reload_check, hangup.take())),
        )
    });
    let _ignored_hangups = hangup.map(|mut signal| {
        tokio::spawn(async move {
            while signal.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload (no [tls])");
            }
        })
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = handshakes.acquire(&peer.ip()) else {
                    tracing::debug!(%peer, "too many connections without a request yet: closed");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                next_conn_id += 1;
                // One box for everything the task starts with: a task keeps what it
                // captures for its whole life (hours, for a stream), even once moved on.
                if let Some((acceptor, _)) = &tls {
                    // A task of its own, so nothing of TLS sits in a plain stream's task.
                    let c = TlsConnection {
                        stream_start: stream_start.clone(),
                        state: state.clone(),
                        conn: ConnInfo { peer, id: next_conn_id },
                        deadline: Instant::now() + state.config.http.head_timeout,
                        permit,
                        watcher: graceful.watcher(),
                        done: done.clone(),
                    };
                    tokio::spawn(serve_tls(acceptor.clone(), stream, c));
                    continue;
                }
                let start = Box::new(Start {
                    stream,
                    stream_start: stream_start.clone(),
                    state: state.clone(),
                    conn: ConnInfo { peer, id: next_conn_id },
                    permit,
                    watcher: graceful.watcher(),
                    done: done.clone(),
                });
                // hyper's connection futures are boxed so the task, sized by its largest
                // state, stays small for fast-path streams.
                let fut = async move {
                    let Start { mut stream, stream_start, state, conn, permit, watcher, done } = super::unbox(start);
                    let deadline = Instant::now() + state.config.http.head_timeout;
                    let Some((protocol, seen)) = sniff(&mut stream, &stream_start, deadline).await else {
                        return;
                    };
                    drop(stream_start);
                    let name = match protocol {
                        Protocol::Stream => "h1_fast",
                        Protocol::H2 => "h2",
                        Protocol::Http1 => "h1",
                    };
                    state.metrics.connection(name, false);
                    let result = match protocol {
                        Protocol::Stream => {
                            let opening = Box::new(fast::Opening {
                                state,
                                conn,
                                seen,
                                permit,
                                deadline,
                            });
                            fast::serve(stream, opening).await;
                            drop(done);
                            return;
                        }
                        // Boxed: a fast-path stream's task is sized by its largest state,
                        // and these are big (builders, a timer, hyper's connection).
                        Protocol::H2 => {
                            drop(watcher);
                            let c = h2::H2Connection { state, conn, deadline, permit, done };
                            Box::pin(h2::serve(stream, seen, c)).await
                        }
                        Protocol::Http1 => {
                            drop(done); // hyper's graceful shutdown watches these
                            Box::pin(serve_http1(stream, seen, state, conn, deadline, permit, watcher)).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(peer = %conn.peer, "connection ended with error: {e}");
                    }
                };
                tokio::spawn(fut);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if let Some((_, watch)) = tls {
        watch.abort();
    }
    state.begin_drain();
    let grace = state.config.shutdown_grace;
    drop(done);
    let all_closed = async {
        graceful.shutdown().await;
        let _ = all_done.recv().await;
    };
    tokio::select! {
        () = all_closed => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::{decide, Protocol, H2_PREFACE};

    const START: &[u8] = b"GET /sse/stream";

    #[test]
    fn the_first_bytes_choose_the_server_as_soon_as_they_can() {
        assert_eq!(decide(H2_PREFACE, START), Some(Protocol::H2));
        assert_eq!(
            decide(b"GET /sse/stream?companyId=a HTTP/1.1\r\n", START),
            Some(Protocol::Stream)
        );
        assert_eq!(decide(b"GET /sse/stream HTTP/1.1\r\n", START), Some(Protocol::Stream));
        assert_eq!(decide(b"GET /sse/streams HTTP/1.1", START), Some(Protocol::Http1));
        assert_eq!(decide(b"HEAD /sse/stream HTTP/1.1", START), Some(Protocol::Http1));
        assert_eq!(decide(b"GET /sse/poll?x", START), Some(Protocol::Http1));
        assert_eq!(decide(b"POST", START), Some(Protocol::Http1));
        assert_eq!(decide(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nX", START), Some(Protocol::H2));
        assert_eq!(decide(b"PRX", START), Some(Protocol::Http1));
    }

    #[test]
    fn partial_prefixes_wait_for_more_bytes() {
        for partial in [&b"P"[..], b"PRI * HTTP/2", b"G", b"GET /sse/str", b"GET /sse/stream"] {
            assert_eq!(decide(partial, START), None, "{:?}", String::from_utf8_lossy(partial));
        }
        assert_eq!(
            decide(b"G", b""),
            Some(Protocol::Http1),
            "fast path off: no wait for GET"
        );
    }
}
