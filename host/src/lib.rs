//! # sse-host
//!
//! The SSE host of sse-edge: it owns every connection and every channel's history, and
//! delivers each event exactly once and in order to the subscribers of its (company,
//! channel), or tells them explicitly (`reset`) that history was lost. Built on hyper 1
//! and tokio. The binary `sse-host` is a thin shell over this library.
//!
//! # Layout
//! - [`config`]: TOML + env + flags, validated before binding.
//! - [`app`]: shared state, background ticks (heartbeat, sweep), run and drain.
//! - [`hub`]: channels, history, fan-out, resume, polling, limits (no HTTP types).
//! - [`edge`]: the embedded proxy-wasm host on wasmtime (edge mode `wasm`).
//! - `http`: server, routes, edge modes, SSE bodies, poll and publish handlers.
//! - [`error`]: host errors and their one mapping to wire codes.
//! - [`dev`]: the no-config dev mode (secrets kept in a local file, dev tokens).
//! - [`metrics`], [`ratelimit`]: Prometheus exposition, publish rate limits.
#![forbid(unsafe_code)]

pub mod app;
pub mod backend;
pub mod config;
pub mod dev;
pub mod edge;
pub mod error;
mod http;
pub mod hub;
pub mod metrics;
pub mod ratelimit;

pub use app::{App, AppState};
pub use config::{EdgeMode, FileConfig, HostConfig};
pub use hub::Hub;
