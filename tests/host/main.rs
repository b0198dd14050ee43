//! The host end to end on real sockets with a real HTTP client: streaming, resume,
//! isolation, polling, publish, limits, heartbeats, shutdown, edge modes, bad input.

mod admin;
mod attacks;
mod bad_input;
mod config;
mod edge_envoy;
mod edge_wasm;
mod fast_path;
mod fuzz_twins;
mod heartbeat;
mod idempotency;
mod isolation;
mod limits;
mod metrics;
mod poll;
mod publish;
mod publisher;
mod resume;
mod shutdown;
mod slow_consumer;
mod streaming;
mod tls;

/// `streaming.rs` again with the HTTP/1.1 fast path off. Which server answers a stream
/// depends on how TCP splits its first bytes, so both must pass the same tests: here
/// `TestHost` names `HyperOnlyHost` (an explicit import shadows the file's glob one),
/// whose hosts serve every stream with hyper.
mod streaming_over_hyper {
    use sse_tests::HyperOnlyHost as TestHost;
    include!("streaming.rs");
}
