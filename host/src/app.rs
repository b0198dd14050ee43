//! The application: state shared by all requests, background ticks, and the run loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket};

use crate::backend::{Backend, BackendError, MemoryBackend, RedisBackend};
use crate::config::{BackendSettings, HostConfig};
use crate::dev::DevSecrets;
use crate::edge::{EdgeError, WasmEdge};
use crate::hub::{sse, Hub};
use crate::metrics::HttpMetrics;
use crate::ratelimit::RateLimiter;

/// Retry hint sent to streams closed by shutdown: reconnect soon, to another instance.
const DRAIN_RETRY_MS: u64 = 500;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: HostConfig,
    /// The hub: this host's connections, queues and fan-out.
    pub hub: Hub,
    /// Where events are stored and read back (memory or Redis).
    pub backend: Arc<dyn Backend>,
    /// HTTP-level metrics.
    pub metrics: HttpMetrics,
    /// Publish rate limits.
    pub rate: RateLimiter,
    /// The embedded edge's filter chain (edge mode `wasm`).
    pub edge: Option<WasmEdge>,
    /// Dev mode's secrets: enables `/dev/token` for the dashboard.
    pub dev: Option<DevSecrets>,
    draining: AtomicBool,
}

impl AppState {
    /// True once shutdown began: no new streams, readyz is false.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts draining: refuses new streams and ends the open ones with a short `retry:`.
    pub fn begin_drain(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            tracing::info!("draining: closing streams");
            self.hub.close_all(&closing_frame(DRAIN_RETRY_MS, "shutdown"));
        }
    }
}

/// The last frame of a stream the server ends: a `retry:` hint and a `closing` event
/// that says why, so the client knows to reconnect (with a fresh token if it expired).
fn closing_frame(retry_ms: u64, reason: &str) -> Bytes {
    let data = serde_json::json!({ "reason": reason }).to_string();
    let mut frame = sse::retry_frame(retry_ms).to_vec();
    frame.extend_from_slice(&sse::event_frame(None, Some("closing"), &data));
    Bytes::from(frame)
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// A wasm filter could not be loaded or refused its configuration (fail closed).
    #[error("edge filter: {0}")]
    Edge(#[from] EdgeError),
    /// The event store could not be reached (fail at start, not at the first request).
    #[error("{0}")]
    Store(#[from] BackendError),
}

/// Pending connections the kernel may queue before `accept` (capped by
/// `net.core.somaxconn`). The standard library's 128 overflows under a reconnect burst of a
/// few hundred clients: each dropped SYN costs its client a one-second retransmit.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A bound, ready-to-run host.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl App {
    /// Loads the edge filters (if any) and binds the listener. Nothing is served until
    /// [`App::run`].
    pub async fn bind(config: HostConfig) -> Result<Self, StartError> {
        let edge = match &config.wasm {
            Some(w) => Some(WasmEdge::load(w.plugins.clone(), w.vms, w.limits)?),
            None => None,
        };
        let listener =
            listen(config.listen).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", config.listen)))?;
        let hub = Hub::new(config.hub.clone());
        let backend: Arc<dyn Backend> = match &config.backend {
            BackendSettings::Memory => Arc::new(MemoryBackend::new(hub.clone())),
            BackendSettings::Redis(r) => Arc::new(RedisBackend::connect(r.clone(), hub.clone()).await?),
        };
        let rate = RateLimiter::new(config.publish.rate_per_sec, config.publish.burst);
        let state = AppState {
            config,
            hub,
            backend,
            metrics: HttpMetrics::default(),
            rate,
            edge,
            dev: None,
            draining: AtomicBool::new(false),
        };
        Ok(Self {
            listener,
            state: Arc::new(state),
        })
    }

    /// Dev mode: lets the dashboard fetch dev tokens from `/dev/token`.
    pub fn with_dev_tokens(mut self, secrets: DevSecrets) -> Self {
        Arc::get_mut(&mut self.state)
            .expect("state is not shared before run")
            .dev = Some(secrets);
        self
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The hub, for in-process publishing (the seed's `broadcast*` helpers).
    pub fn hub(&self) -> Hub {
        self.state.hub.clone()
    }

    /// Shared state (tests and embedders).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let ticks = tokio::spawn(run_ticks(self.state.clone()));
        tracing::info!(addr = %self.local_addr(), edge = ?self.state.config.edge, epoch = self.state.hub.epoch(), "listening");
        crate::http::server::serve(self.listener, self.state.clone(), shutdown).await;
        ticks.abort();
        self.state.backend.shutdown().await;
    }
}

/// One shared heartbeat tick for every stream (no per-connection timers) and a
/// once-a-second sweep for expiry, history age and idle channels.
async fn run_ticks(state: Arc<AppState>) {
    let s = &state.config.stream;
    let heartbeat = if s.heartbeat_event {
        sse::event_frame(None, Some("heartbeat"), "{}")
    } else {
        sse::comment_frame("heartbeat")
    };
    let expiry = closing_frame(s.retry_ms.min(1000), "expired");
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + s.heartbeat, s.heartbeat);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut wasm_tick = tokio::time::interval(Duration::from_millis(50));
    wasm_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => state.hub.broadcast(&heartbeat),
            _ = sweep.tick() => {
                state.hub.sweep(&expiry);
                state.rate.prune();
            }
            _ = wasm_tick.tick(), if state.edge.is_some() => {
                if let Some(edge) = &state.edge {
                    edge.tick();
                }
            }
        }
    }
}
