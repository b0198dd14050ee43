//! HTTP: the hyper server, routing, and the translation between requests and the hub.
//! No domain rules live here: the policy decides, the hub delivers.

mod edge;
mod fast;
mod head;
mod poll;
mod prefixed;
mod publish;
pub(crate) mod reply;
mod routes;
pub(crate) mod server;
mod stream;
mod wasm;
mod web;

/// Moves a value out of its box and frees the box at once. Inside an async block,
/// `let v = *boxed;` frees the allocation only when `boxed` goes out of scope, which for
/// a stream's task is when the stream ends: every byte kept per idle stream counts.
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}
