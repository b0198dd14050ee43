//! # sse-host
//!
//! The SSE host of sse-edge: it owns every connection and every channel's history, and
//! delivers each event exactly once and in order to the subscribers of its (company,
//! channel), or tells them explicitly (`reset`) that history was lost. Built on hyper 1
//! and tokio. The binary `sse-host` is a thin shell over this library.
//!
//! # Layout
//!
//! A request crosses three layers, each depending only on the ones below it:
//!
//! ```text
//! http (transport: parse, authorize via the edge, translate)   app (start, ticks, run)
//!    \____________________ state (AppState) ____________________/
//!                              |
//!                   broker (the one door into the domain)
//!                     /                     \
//!        backend (memory | redis)  --->   hub (local subscribers, fan-out, lifetimes)
//! ```
//!
//! - [`config`]: TOML + env + flags, one module per table, validated before binding.
//! - [`app`]: start-up (edge, listener, backend), background ticks, run and drain.
//! - [`state`]: [`AppState`], what every request shares.
//! - `http`: server, fast path, routes, edge modes, and the translation between HTTP and
//!   the broker (no domain rules: the policy decides, the broker delivers).
//! - [`admin`]: who is connected, disconnects and revocations, across hosts.
//! - [`broker`]: the only way from transport and in-process callers to the domain.
//! - [`backend`]: where events live (memory, Redis Streams); called only by the broker.
//! - [`hub`]: channels, history, fan-out, resume, polling, limits (no HTTP types).
//! - [`edge`]: the embedded proxy-wasm host on wasmtime (edge mode `wasm`).
//! - [`error`]: host errors and their one mapping to wire codes.
//! - [`dev`]: the no-config dev mode (secrets kept in a local file, dev tokens).
//! - [`metrics`], [`ratelimit`], [`clock`]: Prometheus exposition, publish rate limits,
//!   wall-clock time.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod backend;
pub mod broker;
pub mod clock;
pub mod config;
pub mod dev;
pub mod edge;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod http;
pub mod hub;
pub mod metrics;
pub mod ratelimit;
pub mod state;
pub mod tls;

pub use app::App;
pub use broker::Broker;
pub use config::{EdgeMode, FileConfig, HostConfig, LogFormat};
pub use state::AppState;
