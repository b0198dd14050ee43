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

use super::routes;
use super::wasm::ConnInfo;
use crate::app::AppState;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a client may take to send its first bytes.
const PREFACE_TIMEOUT: Duration = Duration::from_secs(30);

/// True when the connection starts with the HTTP/2 preface; false for anything else
/// (HTTP/1.x), for a closed connection, or when the client stays silent.
async fn speaks_h2(stream: &TcpStream) -> bool {
    let sniff = async {
        let mut buf = [0u8; 24];
        loop {
            let n = stream.peek(&mut buf).await.unwrap_or(0);
            if n == 0 || buf[..n] != H2_PREFACE[..n] {
                return false;
            }
            if n == H2_PREFACE.len() {
                return true;
            }
            // A preface split across segments: wait for the rest.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(PREFACE_TIMEOUT, sniff).await.unwrap_or(false)
}

/// Serves until `shutdown` resolves, then stops accepting, asks every connection to
/// finish and waits up to the configured grace period.
pub(crate) async fn serve(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
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
                let service = service_fn(move |req| routes::handle(state.clone(), req, conn));
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let h2 = speaks_h2(&stream).await;
                    let io = TokioIo::new(stream);
                    let result = if h2 {
                        let mut builder = http2::Builder::new(TokioExecutor::new());
                        builder.timer(TokioTimer::new()).max_concurrent_streams(10_000);
                        watcher.watch(builder.serve_connection(io, service)).await
                    } else {
                        let mut builder = http1::Builder::new();
                        builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
                        watcher.watch(builder.serve_connection(io, service)).await
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
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
    }
}
