//! The accept loop: HTTP/1.1 and HTTP/2 with prior knowledge (h2c, what Envoy's upstream
//! speaks) on one port, with graceful shutdown of every connection.
//!
//! Each connection is served by hyper's HTTP/1 or HTTP/2 connection type alone, chosen by
//! peeking at the client preface. (hyper-util's `auto` connection carries both state
//! machines in every task: 22.9 KiB per idle SSE stream against 15.2 KiB this way, with
//! `sse-bench --idle 5000`.)

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::wasm::ConnInfo;
use super::{fast, head, routes};
use crate::state::AppState;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a new connection speaks, from its first bytes.
enum Protocol {
    /// The HTTP/2 client preface (h2c with prior knowledge: Envoy's upstream).
    H2,
    /// An HTTP/1.x `GET {prefix}/stream`: the fast path (`fast.rs`).
    Stream,
    /// Anything else: hyper HTTP/1.
    Http1,
}

/// Peeks (without consuming) at the first bytes to choose how to serve the connection.
/// `None`: the client closed, or sent nothing useful before `deadline`; drop it.
async fn sniff(stream: &TcpStream, prefix: &str, fast_path: bool, deadline: Instant) -> Option<Protocol> {
    let sniff = async {
        let mut buf = [0u8; 64];
        loop {
            let n = stream.peek(&mut buf).await.unwrap_or(0);
            let seen = &buf[..n];
            if n == 0 {
                return None;
            }
            if seen.len() >= H2_PREFACE.len() && seen.starts_with(H2_PREFACE) {
                return Some(Protocol::H2);
            }
            if !H2_PREFACE.starts_with(&seen[..n.min(H2_PREFACE.len())]) {
                return Some(if fast_path && fast::is_stream_request(seen, prefix) {
                    Protocol::Stream
                } else {
                    Protocol::Http1
                });
            }
            // A preface split across segments: wait for the rest.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout_at(deadline, sniff).await.ok().flatten()
}

/// Serves until `shutdown` resolves, then stops accepting, asks every connection to
/// finish and waits up to the configured grace period.
pub(crate) async fn serve(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    // Fast-path streams hold a clone; shutdown waits until every clone is gone.
    let (fast_tracker, mut fast_streams) = tokio::sync::mpsc::channel::<()>(1);
    let mut next_conn_id: u64 = 0;
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
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                next_conn_id += 1;
                let conn = ConnInfo { peer, id: next_conn_id };
                let watcher = graceful.watcher();
                let fast_done = fast_tracker.clone();
                // hyper's connection futures are boxed so the task, sized by its largest
                // state, stays small for fast-path streams.
                tokio::spawn(async move {
                    let deadline = head::deadline();
                    let prefix = &state.config.policy.routes.prefix;
                    let Some(protocol) = sniff(&stream, prefix, state.config.stream.http1_fast_path, deadline).await else {
                        return;
                    };
                    let result = match protocol {
                        Protocol::Stream => {
                            fast::serve(stream, state, conn, deadline).await;
                            drop(fast_done);
                            return;
                        }
                        Protocol::H2 => {
                            // Boxed: each HTTP/2 stream is a task sized by this future, and
                            // it is only needed until the response head exists.
                            let service = service_fn(move |req| Box::pin(routes::handle(state.clone(), req, conn)));
                            let mut builder = http2::Builder::new(TokioExecutor::new());
                            builder.timer(TokioTimer::new()).max_concurrent_streams(10_000);
                            Box::pin(watcher.watch(builder.serve_connection(TokioIo::new(stream), service))).await
                        }
                        Protocol::Http1 => {
                            let service = service_fn(move |req| routes::handle(state.clone(), req, conn));
                            let mut builder = http1::Builder::new();
                            builder
                                .timer(TokioTimer::new())
                                .header_read_timeout(head::remaining(deadline))
                                .max_buf_size(head::MAX_HEAD_BYTES);
                            Box::pin(watcher.watch(builder.serve_connection(TokioIo::new(stream), service))).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection ended with error: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.begin_drain();
    let grace = state.config.shutdown_grace;
    drop(fast_tracker);
    let all_closed = async {
        graceful.shutdown().await;
        let _ = fast_streams.recv().await;
    };
    tokio::select! {
        () = all_closed => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
    }
}
