//! The application: start-up (edge, listener, backend), background ticks, and the run
//! loop. Request handling lives in `http`; the state both share lives in `state`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

use crate::admin::revocations::RevocationStore;
use crate::admin::{feed, Control};
use crate::backend::{Backend, BackendError, MemoryBackend, RedisBackend};
use crate::broker::Broker;
use crate::config::{BackendSettings, HostConfig};
use crate::dev::DevSecrets;
use crate::edge::{EdgeError, WasmEdge};
use crate::hub::{sse, Hub};
use crate::state::{closing_frame, AppState};

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
    /// SIGHUP, caught from binding on (reloads `[tls]`; otherwise logged): a SIGHUP
    /// right after the host announced itself must not kill it.
    hangup: Option<tokio::signal::unix::Signal>,
}

impl App {
    /// Loads the edge filters (if any) and binds the listener. Nothing is served until
    /// [`App::run`].
    pub async fn bind(config: HostConfig) -> Result<Self, StartError> {
        let revocations = Arc::new(RevocationStore::default());
        let edge = match &config.wasm {
            Some(w) => {
                // The filters' revocation callouts are answered in-process.
                let upstream = feed::upstream(Arc::new(config.policy.clone()), revocations.clone());
                let mut w = w.clone();
                for p in &mut w.plugins {
                    p.upstream = Some(upstream.clone());
                }
                Some(WasmEdge::load(&w)?)
            }
            None => None,
        };
        let listener =
            listen(config.listen).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", config.listen)))?;
        let hub = Hub::new(config.hub.clone());
        let admin = Arc::new(Control::new(hub.clone(), revocations));
        let backend: Arc<dyn Backend> = match &config.backend {
            BackendSettings::Memory => Arc::new(MemoryBackend::new(hub.clone(), admin.clone())),
            BackendSettings::Redis(r) => Arc::new(RedisBackend::connect(r.clone(), hub.clone(), admin.clone()).await?),
        };
        let state = AppState::new(config, Broker::new(hub, backend, admin), edge, None);
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| tracing::warn!("SIGHUP not caught ({e}): TLS reloads on file changes only"))
            .ok();
        Ok(Self {
            listener,
            state: Arc::new(state),
            hangup,
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

    /// The broker, for in-process publishing (the seed's `broadcast*` helpers): it goes
    /// through the configured backend, like `POST /sse/publish`.
    pub fn broker(&self) -> Broker {
        self.state.broker.clone()
    }

    /// Shared state (tests and embedders).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let ticks = tokio::spawn(run_ticks(self.state.clone()));
        tracing::info!(addr = %self.local_addr(), edge = ?self.state.config.edge, epoch = self.state.broker.epoch(), "listening");
        crate::http::server::serve(self.listener, self.state.clone(), shutdown, self.hangup).await;
        ticks.abort();
        self.state.broker.shutdown().await;
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
            _ = beat.tick() => state.broker.heartbeat(&heartbeat),
            _ = sweep.tick() => {
                state.broker.sweep(&expiry);
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
