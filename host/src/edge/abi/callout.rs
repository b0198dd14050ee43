//! `proxy_http_call`: a filter's HTTP callout. This host's upstreams are in-process (the
//! [`Upstream`](crate::edge::Upstream) the host installs, which answers from memory), so
//! a call is recorded here and answered through `proxy_on_http_call_response` on the
//! context that made it, as Envoy does once the upstream replies: right after the
//! callback returns for calls made in `on_configure` and `on_tick` (where our filter
//! makes them), at the next tick for calls made in a request's callbacks. Without an
//! upstream every call is refused (`BAD_ARGUMENT`, Envoy's answer for an unknown
//! cluster).

use wasmtime::{Caller, Linker};

use crate::edge::memory::{self, decode_pairs};
use crate::edge::shared::status as st;
use crate::edge::state::{HostState, PendingCall};

type C<'a> = Caller<'a, HostState>;

/// Calls one VM may have waiting at once.
const MAX_PENDING: usize = 16;
/// Largest call request (headers and body), in bytes.
const MAX_CALL_BYTES: usize = 64 * 1024;

pub(super) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         up_len: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         _tp: i32,
         _tl: i32,
         _timeout_ms: i32,
         token_ptr: i32|
         -> i32 {
            if c.data().plugin.upstream.is_none() || c.data().calls.len() >= MAX_PENDING {
                return st::BAD_ARGUMENT;
            }
            let sizes = [up_len, hl, bl].map(|n| n as u32 as usize);
            if sizes.iter().fold(0usize, |a, n| a.saturating_add(*n)) > MAX_CALL_BYTES {
                return st::BAD_ARGUMENT;
            }
            let read = |c: &mut C<'_>| -> Result<PendingCall, i32> {
                let cluster = memory::read_string(c, up, up_len)?;
                let headers = decode_pairs(&memory::read(c, hp, hl)?).ok_or(st::BAD_ARGUMENT)?;
                let body = memory::read(c, bp, bl)?;
                Ok(PendingCall {
                    context: c.data().current,
                    token: 0,
                    cluster,
                    headers,
                    body,
                })
            };
            let mut call = match read(&mut c) {
                Ok(call) => call,
                Err(s) => return s,
            };
            let token = c.data().next_call_token.wrapping_add(1).max(1);
            // The token is written first: a call the filter cannot know of is never made.
            if let Err(s) = memory::write_u32(&mut c, token_ptr, token) {
                return s;
            }
            let d = c.data_mut();
            d.next_call_token = token;
            call.token = token;
            d.calls.push(call);
            st::OK
        },
    )?;
    Ok(())
}
