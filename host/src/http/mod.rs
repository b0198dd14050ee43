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
