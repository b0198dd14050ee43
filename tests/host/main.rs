//! The host end to end on real sockets with a real HTTP client: streaming, resume,
//! isolation, polling, publish, limits, heartbeats, shutdown, edge modes, bad input.

mod bad_input;
mod config;
mod edge_envoy;
mod edge_wasm;
mod fast_path;
mod heartbeat;
mod isolation;
mod limits;
mod poll;
mod publish;
mod resume;
mod shutdown;
mod slow_consumer;
mod streaming;
