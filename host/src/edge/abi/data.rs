//! Buffers (configuration), properties, shared data and shared queues.

use wasmtime::{Caller, Linker};

use super::status;
use crate::edge::memory::{self, encode_pairs};
use crate::edge::shared::{status as st, MAX_SHARED_KEY, MAX_SHARED_VALUE};
use crate::edge::state::HostState;

type C<'a> = Caller<'a, HostState>;

/// The request body, during `on_request_body` (the host hands a filter a whole body).
const HTTP_REQUEST_BODY: i32 = 0;
const HTTP_CALL_RESPONSE_BODY: i32 = 4;
const VM_CONFIGURATION: i32 = 6;
const PLUGIN_CONFIGURATION: i32 = 7;

/// A property's value in Envoy's encoding: strings raw, integers 8 bytes little-endian,
/// maps in the pairs format.
fn property(c: &mut C<'_>, path: &[u8]) -> Option<Vec<u8>> {
    let d = c.data_mut();
    let plugin_name = d.plugin.name.clone();
    let stream = d.streams.get(&d.current);
    let header = |name: &str| {
        stream.and_then(|s| {
            s.request_headers
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.clone())
        })
    };
    Some(match path {
        b"plugin_name" | b"plugin_root_id" | b"plugin_vm_id" => plugin_name.into_bytes(),
        b"source\0address" => stream?.source?.to_string().into_bytes(),
        b"source\0port" => u64::from(stream?.source?.port()).to_le_bytes().to_vec(),
        b"connection\0id" | b"connection_id" => stream?.connection_id.to_le_bytes().to_vec(),
        b"request\0path" => header(":path")?,
        b"request\0url_path" => header(":path")?.split(|b| *b == b'?').next()?.to_vec(),
        b"request\0method" => header(":method")?,
        b"request\0host" => header(":authority")?,
        b"request\0scheme" => header(":scheme")?,
        b"request\0id" => header("x-request-id")?,
        b"request\0protocol" => b"HTTP/1.1".to_vec(),
        b"request\0headers" => encode_pairs(&stream?.request_headers),
        p if p.starts_with(b"request\0headers\0") => header(std::str::from_utf8(&p[16..]).ok()?)?,
        _ => return None,
    })
}

pub(super) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, bt: i32, start: i32, max: i32, rp: i32, rl: i32| -> i32 {
            let buffer = match bt {
                PLUGIN_CONFIGURATION => c.data().plugin.configuration.clone(),
                VM_CONFIGURATION => Vec::new(),
                HTTP_REQUEST_BODY => match &c.data().request_body {
                    Some(body) => body.clone(),
                    None => return st::NOT_FOUND,
                },
                HTTP_CALL_RESPONSE_BODY => match &c.data().call_response {
                    Some((_, body)) => body.clone(),
                    None => return st::NOT_FOUND,
                },
                _ => return st::NOT_FOUND, // response bodies pass through unexposed
            };
            // The SDK asks for (0, u32::MAX): clamp to the buffer.
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(max as u32 as usize).min(buffer.len());
            memory::return_bytes(&mut c, &buffer[start..end], rp, rl)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |_: C<'_>, _bt: i32, _s: i32, _n: i32, _p: i32, _l: i32| -> i32 { st::NOT_FOUND },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: C<'_>, bt: i32, rl: i32, rf: i32| -> i32 {
            if bt != PLUGIN_CONFIGURATION {
                return st::NOT_FOUND;
            }
            let len = c.data().plugin.configuration.len() as u32;
            status(memory::write_u32(&mut c, rl, len).and_then(|()| memory::write_u32(&mut c, rf, 0)))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, rp: i32, rl: i32| -> i32 {
            let path = match memory::read(&mut c, pp, pl.min(4096)) {
                Ok(p) => p,
                Err(s) => return s,
            };
            match property(&mut c, &path) {
                Some(v) => memory::return_bytes(&mut c, &v, rp, rl),
                None => st::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |_: C<'_>, _pp: i32, _pl: i32, _vp: i32, _vl: i32| -> i32 { st::UNIMPLEMENTED },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, rp: i32, rl: i32, rc: i32| -> i32 {
            let key = match memory::read(&mut c, kp, kl.min(MAX_SHARED_KEY as i32)) {
                Ok(k) => k,
                Err(s) => return s,
            };
            let Some((value, cas)) = c.data().plugin.data.get(&key) else {
                return st::NOT_FOUND;
            };
            match memory::return_bytes(&mut c, &value, rp, rl) {
                st::OK => status(memory::write_u32(&mut c, rc, cas)),
                s => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> i32 {
            if kl as u32 as usize > MAX_SHARED_KEY || vl as u32 as usize > MAX_SHARED_VALUE {
                return st::BAD_ARGUMENT;
            }
            let (key, value) = match (memory::read(&mut c, kp, kl), memory::read(&mut c, vp, vl)) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            c.data().plugin.data.set(&key, &value, cas as u32)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, nl: i32, ret: i32| -> i32 {
            let name = match memory::read(&mut c, np, nl.min(1024)) {
                Ok(n) => n,
                Err(s) => return s,
            };
            let id = c.data().plugin.queues.register(&name);
            status(memory::write_u32(&mut c, ret, id))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, _vp: i32, _vl: i32, np: i32, nl: i32, ret: i32| -> i32 {
            let name = match memory::read(&mut c, np, nl.min(1024)) {
                Ok(n) => n,
                Err(s) => return s,
            };
            match c.data().plugin.queues.resolve(&name) {
                Some(id) => status(memory::write_u32(&mut c, ret, id)),
                None => st::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, vp: i32, vl: i32| -> i32 {
            if vl as u32 as usize > MAX_SHARED_VALUE {
                return st::BAD_ARGUMENT;
            }
            match memory::read(&mut c, vp, vl) {
                Ok(v) => c.data().plugin.queues.enqueue(id as u32, &v),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, rp: i32, rl: i32| -> i32 {
            match c.data().plugin.queues.dequeue(id as u32) {
                Ok(v) => memory::return_bytes(&mut c, &v, rp, rl),
                Err(s) => s,
            }
        },
    )?;
    Ok(())
}
