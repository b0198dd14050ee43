//! HTTP: the hyper server, routing, and the translation between requests and the hub.
//! No domain rules live here: the policy decides, the hub delivers.

mod admin;
mod edge;
mod fast;
mod h2;
mod head;
mod poll;
mod prefixed;
mod publish;
pub(crate) mod reply;
mod routes;
pub(crate) mod server;
mod stream;
mod tls;
mod wasm;
mod web;

#[cfg(feature = "fuzzing")]
pub(crate) use {
    fast::{parse_head, Head},
    head::MAX_HEAD_BYTES,
};

/// Moves a value out of its box and frees the box at once. Inside an async block,
/// `let v = *boxed;` frees the allocation only when `boxed` goes out of scope, which for
/// a stream's task is when the stream ends: every byte kept per idle stream counts.
#[allow(clippy::boxed_local)] // taking the box is the point: it is freed on return
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}
