//! A request through the filter chain, in Envoy's order: each filter's
//! `on_request_headers`; a filter that pauses there to see the body (a publish whose
//! signed identity covers its digest) gets it whole in `on_request_body`, and may change
//! the headers then. The host reads a body only when a filter asks for it, so a request
//! the filters refuse on its headers costs no body read.
//!
//! Filters that continue on headers are not shown the body (this host buffers nothing
//! for them; Envoy would stream it past them, too late to change the headers anyway).

use std::net::SocketAddr;

use super::state::{HeaderMap, LocalReply};
use super::vm::Outcome;
use super::{Contexts, EdgeError, WasmEdge};

/// What the chain decided.
#[derive(Debug)]
pub enum Verdict {
    /// Forward the request with these headers (pseudo-headers included).
    Forward(HeaderMap),
    /// Answer with this reply.
    Reply(LocalReply),
    /// A filter paused to see the request body: read it (bounded) and pass it to
    /// [`WasmEdge::on_request_body`].
    NeedsBody(Paused),
}

/// Where the chain paused for the body.
#[derive(Debug)]
pub struct Paused {
    /// Index in `Contexts::held` of the paused filter's context.
    at: usize,
    source: Option<SocketAddr>,
    connection_id: u64,
}

/// The request body as far as the chain knows it.
#[derive(Debug, Clone, Copy)]
enum Body<'a> {
    /// The request has none.
    None,
    /// It has one, not read yet.
    Unread,
    /// Read whole.
    Read(&'a [u8]),
}

impl WasmEdge {
    /// Runs the request headers through the chain (`has_body`: a body follows). An
    /// error means: answer 503.
    pub fn on_request(
        &self,
        headers: HeaderMap,
        has_body: bool,
        source: Option<SocketAddr>,
        connection_id: u64,
    ) -> Result<(Verdict, Contexts), EdgeError> {
        let mut contexts = Contexts {
            plugins: self.plugins.clone(),
            held: Vec::new(),
            slot: None,
        };
        let at = Paused {
            at: 0,
            source,
            connection_id,
        };
        let body = if has_body { Body::Unread } else { Body::None };
        let verdict = self.run(&mut contexts, at, headers, body)?;
        Ok((verdict, contexts))
    }

    /// Gives the filter that paused the whole request `body`, then runs the rest of the
    /// chain with it. An error means: answer 503.
    pub fn on_request_body(&self, contexts: &mut Contexts, paused: Paused, body: &[u8]) -> Result<Verdict, EdgeError> {
        let (p, vm, generation, ctx) = contexts.held[paused.at];
        let plugin = &self.plugins[p];
        let stopped = || EdgeError::Stopped(plugin.shared.name.clone());
        // `None`: its VM died since; the request cannot go on without that filter.
        let outcome = plugin
            .with_same_vm(vm, generation, |v| v.request_body(ctx, body))
            .ok_or_else(stopped)??;
        let headers = match outcome {
            Outcome::Continue(headers) => headers,
            Outcome::Reply(reply) => return Ok(Verdict::Reply(reply)),
            Outcome::Paused | Outcome::Stopped => return Err(stopped()),
        };
        let next = Paused {
            at: paused.at + 1,
            ..paused
        };
        self.run(contexts, next, headers, Body::Read(body))
    }

    /// Runs filters from `from.at` on.
    fn run(
        &self,
        contexts: &mut Contexts,
        from: Paused,
        mut headers: HeaderMap,
        body: Body<'_>,
    ) -> Result<Verdict, EdgeError> {
        for (p, plugin) in self.plugins.iter().enumerate().skip(from.at) {
            let vm = plugin.pick();
            let these = std::mem::take(&mut headers);
            let ((ctx, outcome), generation) = plugin.with_vm(vm, |v| {
                let end_of_stream = matches!(body, Body::None);
                let (ctx, first) = v.request_headers(these, end_of_stream, from.source, from.connection_id)?;
                let outcome = match (first, body) {
                    (Outcome::Paused, Body::Read(bytes)) => v.request_body(ctx, bytes)?,
                    (first, _) => first,
                };
                Ok((ctx, outcome))
            })?;
            contexts.held.push((p, vm, generation, ctx));
            match outcome {
                Outcome::Continue(h) => headers = h,
                Outcome::Reply(reply) => return Ok(Verdict::Reply(reply)),
                Outcome::Paused => {
                    return Ok(Verdict::NeedsBody(Paused {
                        at: contexts.held.len() - 1,
                        ..from
                    }))
                }
                Outcome::Stopped => return Err(EdgeError::Stopped(plugin.shared.name.clone())),
            }
        }
        Ok(Verdict::Forward(headers))
    }
}
