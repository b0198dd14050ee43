//! A connection on the host's own TLS: the handshake, then HTTP/2 or HTTP/1.1 as ALPN
//! chose, with the HTTP/1.1 stream fast path as over plain TCP. Spawned as a task of its
//! own at accept, so nothing of TLS sits in a plain stream's task.

use std::sync::Arc;

use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::server::{serve_http1, sniff, HandshakePermit, Protocol};
use super::wasm::ConnInfo;
use super::{fast, h2};
use crate::state::AppState;

/// What a TLS connection is served with, besides its socket.
pub(super) struct TlsConnection {
    pub(super) stream_start: Arc<[u8]>,
    pub(super) state: Arc<AppState>,
    pub(super) conn: ConnInfo,
    pub(super) deadline: Instant,
    pub(super) permit: HandshakePermit,
    pub(super) watcher: Watcher,
    pub(super) done: mpsc::Sender<()>,
}

/// A TLS connection: the handshake within the head deadline (holding the handshake
/// permit), then as ALPN chose: HTTP/2 (holding a per-peer connection slot for its
/// life), or HTTP/1.1, where a stream request takes the fast path as over plain TCP.
pub(super) async fn serve_tls(acceptor: tokio_rustls::TlsAcceptor, stream: TcpStream, c: TlsConnection) {
    let TlsConnection {
        stream_start,
        state,
        conn,
        deadline,
        permit,
        watcher,
        done,
    } = c;
    let mut stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(peer = %conn.peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let result = if h2 {
        state.metrics.connection("h2", true);
        drop((watcher, stream_start));
        let c = h2::H2Connection {
            state,
            conn,
            deadline,
            permit,
            done,
        };
        h2::serve(stream, Vec::new(), c).await
    } else {
        let Some((protocol, seen)) = sniff(&mut stream, &stream_start, deadline).await else {
            return;
        };
        drop(stream_start);
        if protocol == Protocol::Stream {
            // As in the plain path's task, inline there: a shared helper would be one more
            // future layer in every plain stream's task.
            state.metrics.connection("h1_fast", true);
            drop(watcher);
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
        // HTTP/1.1 as ALPN said (an h2 preface here is hyper's to refuse).
        state.metrics.connection("h1", true);
        drop(done); // hyper's graceful shutdown watches these
        serve_http1(stream, seen, state, conn, deadline, permit, watcher).await
    };
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, "connection ended with error: {e}");
    }
}
