//! HTTP/2 connections (h2c with prior knowledge: what Envoy's upstream speaks; or TLS
//! with ALPN h2: browsers on the host's own TLS), bounded
//! at every stage: no first request by the head deadline, dropped; at most
//! `http.h2_max_concurrent_streams` streams at once; pings that go unanswered end it;
//! no stream for `http.h2_idle_timeout`, closed with GOAWAY; host draining, GOAWAY.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::prefixed::Prefixed;
use super::reply::Guarded;
use super::routes;
use super::server::HandshakePermit;
use super::wasm::ConnInfo;
use crate::state::AppState;

/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection's streams: how many have a live response, and since when none has.
#[derive(Debug)]
struct Activity {
    live: AtomicUsize,
    idle_since: Mutex<Instant>,
}

/// One live stream; the count goes down when its response body is dropped (finished,
/// reset by the peer, or the connection gone).
struct Live(Arc<Activity>);

impl Live {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.live.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::Relaxed) == 1 {
            *self.0.idle_since.lock() = Instant::now();
        }
    }
}

impl Activity {
    /// When an idle connection should close, or `None` while it has streams.
    fn idle_deadline(&self, idle_timeout: Duration) -> Option<Instant> {
        let since = *self.idle_since.lock();
        (self.live.load(Ordering::Relaxed) == 0).then(|| since + idle_timeout)
    }
}

/// What an HTTP/2 connection is served with, besides its socket.
pub(crate) struct H2Connection {
    pub(crate) state: Arc<AppState>,
    pub(crate) conn: ConnInfo,
    /// When the first request must have arrived (the head deadline).
    pub(crate) deadline: Instant,
    /// Given back with the first request.
    pub(crate) permit: HandshakePermit,
    /// Held until the connection ends: shutdown waits for every clone.
    pub(crate) done: mpsc::Sender<()>,
}

/// Serves one HTTP/2 connection (h2c whose first bytes, `seen`, were read by the
/// sniffing, or TLS with ALPN h2 and nothing seen).
pub(crate) async fn serve<S>(stream: S, seen: Vec<u8>, c: H2Connection) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let H2Connection {
        state,
        conn,
        deadline,
        permit,
        done,
    } = c;
    // A per-address slot for the connection's whole life: an h2 connection outlives its
    // requests (up to the idle timeout), so this bounds what one client can hold.
    let Ok(_held) = state.h2_peers.acquire(&conn.peer.ip()) else {
        tracing::debug!(peer = %conn.peer, "too many HTTP/2 connections from this address: closed");
        return Ok(());
    };
    let http = &state.config.http;
    let (idle_timeout, max_streams) = (http.h2_idle_timeout, http.h2_max_concurrent_streams);
    let permit = Arc::new(Mutex::new(Some(permit)));
    let first = permit.clone();
    let activity = Arc::new(Activity {
        live: AtomicUsize::new(0),
        idle_since: Mutex::new(Instant::now()),
    });
    let streams = activity.clone();
    let broker = state.broker.clone();
    let service = service_fn(move |req| {
        drop(first.lock().take());
        let live = Live::enter(&streams);
        let state = state.clone();
        // Boxed: each HTTP/2 stream is a task sized by this future, and it is only
        // needed until the response head exists.
        Box::pin(async move {
            let res = routes::handle(state, req, conn).await?;
            Ok::<_, std::convert::Infallible>(res.map(|body| Guarded::new(body, live)))
        })
    });
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams)
        // A peer that stops answering pings is gone: free its streams.
        .keep_alive_interval(Some(PING_INTERVAL))
        .keep_alive_timeout(PING_TIMEOUT);
    let io = TokioIo::new(Prefixed::new(seen, stream));
    let mut connection = std::pin::pin!(builder.serve_connection(io, service));
    // The first look: at the head deadline, or sooner for the idle timeout.
    let mut check_at = deadline.min(Instant::now() + idle_timeout);
    let mut closed = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = broker.draining_began(), if !closed => {
                connection.as_mut().graceful_shutdown();
                closed = true;
            }
            () = tokio::time::sleep_until(check_at), if !closed => {
                let now = Instant::now();
                if permit.lock().is_some() {
                    if now >= deadline {
                        break Ok(()); // no request by the deadline: dropped, like HTTP/1
                    }
                    check_at = deadline;
                    continue;
                }
                match activity.idle_deadline(idle_timeout) {
                    Some(at) if at <= now => {
                        tracing::debug!(peer = %conn.peer, "idle HTTP/2 connection closed");
                        connection.as_mut().graceful_shutdown();
                        closed = true;
                    }
                    Some(at) => check_at = at,
                    // Streams are open: look again one timeout from now.
                    None => check_at = now + idle_timeout,
                }
            }
        }
    };
    drop(done);
    result
}
