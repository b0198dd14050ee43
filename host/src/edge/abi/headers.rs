//! Header maps: request headers (map 0) and response headers (map 2) of the current
//! context, and a callout's response headers (map 6) while it is answered. Names are matched case-insensitively and stored lower-case, like Envoy.

use wasmtime::{Caller, Linker};

use super::status;
use crate::edge::memory::{self, decode_pairs, encode_pairs};
use crate::edge::shared::status as st;
use crate::edge::state::{HeaderMap, HostState};

type C<'a> = Caller<'a, HostState>;

const REQUEST_HEADERS: i32 = 0;
const RESPONSE_HEADERS: i32 = 2;
const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
/// A map may not grow past this many entries or bytes through hostcalls.
const MAX_PAIRS: usize = 1024;
const MAX_MAP_BYTES: usize = 1 << 20;

/// The map of `map_type` for the current context. Trailers and call maps do not exist
/// in this host: reads see an empty map, writes are refused.
fn map<'c>(c: &'c mut C<'_>, map_type: i32) -> Result<&'c mut HeaderMap, i32> {
    if map_type == HTTP_CALL_RESPONSE_HEADERS {
        return c
            .data_mut()
            .call_response
            .as_mut()
            .map(|r| &mut r.0)
            .ok_or(st::NOT_FOUND);
    }
    let s = c.data_mut().stream().ok_or(st::NOT_FOUND)?;
    match map_type {
        REQUEST_HEADERS => Ok(&mut s.request_headers),
        RESPONSE_HEADERS => Ok(&mut s.response_headers),
        _ => Err(st::NOT_FOUND),
    }
}

/// A map to read: those of [`map`], and a callout's response headers while it is answered.
fn read_map<'c>(c: &'c mut C<'_>, map_type: i32) -> Result<&'c HeaderMap, i32> {
    if map_type == HTTP_CALL_RESPONSE_HEADERS {
        return c.data().call_response.as_ref().map(|r| &r.0).ok_or(st::NOT_FOUND);
    }
    map(c, map_type).map(|m| &*m)
}

fn fits(map: &HeaderMap, extra: usize) -> bool {
    map.len() < MAX_PAIRS && map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + extra <= MAX_MAP_BYTES
}

fn key(c: &mut C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, i32> {
    memory::read(c, ptr, len).map(|k| k.to_ascii_lowercase())
}

/// Adds a value (or replaces every value of the name, with `replace`), within the map's bounds.
fn write_value(c: &mut C<'_>, mt: i32, (kp, kl): (i32, i32), (vp, vl): (i32, i32), replace: bool) -> i32 {
    let (k, v) = match (key(c, kp, kl), memory::read(c, vp, vl)) {
        (Ok(k), Ok(v)) => (k, v),
        (Err(s), _) | (_, Err(s)) => return s,
    };
    match map(c, mt) {
        Ok(m) if fits(m, k.len() + v.len()) => {
            if replace {
                m.retain(|(name, _)| *name != k);
            }
            m.push((k, v));
            st::OK
        }
        Ok(_) => st::BAD_ARGUMENT,
        Err(s) => s,
    }
}

pub(super) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, mt: i32, rp: i32, rl: i32| -> i32 {
            let bytes = match read_map(&mut c, mt) {
                Ok(m) => encode_pairs(m),
                Err(_) if (0..=7).contains(&mt) => Vec::new(),
                Err(s) => return s,
            };
            memory::return_bytes(&mut c, &bytes, rp, rl)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, mt: i32, p: i32, len: i32| -> i32 {
            let raw = match memory::read(&mut c, p, len) {
                Ok(r) => r,
                Err(s) => return s,
            };
            let Some(pairs) = decode_pairs(&raw) else {
                return st::BAD_ARGUMENT;
            };
            match map(&mut c, mt) {
                Ok(m) => {
                    *m = pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
                    st::OK
                }
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, mt: i32, kp: i32, kl: i32, rp: i32, rl: i32| -> i32 {
            let k = match key(&mut c, kp, kl) {
                Ok(k) => k,
                Err(s) => return s,
            };
            let value = match read_map(&mut c, mt) {
                Ok(m) => m.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()),
                Err(s) => return s,
            };
            match value {
                Some(v) => memory::return_bytes(&mut c, &v, rp, rl),
                None => st::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C<'_>, mt: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            write_value(&mut c, mt, (kp, kl), (vp, vl), false)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C<'_>, mt: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            write_value(&mut c, mt, (kp, kl), (vp, vl), true)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, mt: i32, kp: i32, kl: i32| -> i32 {
            let k = match key(&mut c, kp, kl) {
                Ok(k) => k,
                Err(s) => return s,
            };
            status(map(&mut c, mt).map(|m| m.retain(|(name, _)| *name != k)))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: C<'_>, mt: i32, ret: i32| -> i32 {
            let size = match read_map(&mut c, mt) {
                Ok(m) => encode_pairs(m).len() as u32,
                Err(s) => return s,
            };
            status(memory::write_u32(&mut c, ret, size))
        },
    )?;
    Ok(())
}
