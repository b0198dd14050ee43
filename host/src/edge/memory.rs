//! Guest memory access, bounds-checked: a module can pass any pointer and length; the
//! host never reads or writes outside the module's own linear memory, and never
//! allocates more than the bytes that really exist there.

use wasmtime::{Caller, Extern, Memory};

use super::shared::status;
use super::state::HostState;

/// Largest single value the host copies into a module (headers, bodies, config).
const MAX_COPY: usize = 16 << 20;

fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Reads `len` bytes at `ptr`, or `INVALID_MEMORY_ACCESS`.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, i32> {
    let mem = memory(caller).ok_or(status::INVALID_MEMORY_ACCESS)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let end = ptr.checked_add(len).ok_or(status::INVALID_MEMORY_ACCESS)?;
    if end > mem.data_size(&*caller) {
        return Err(status::INVALID_MEMORY_ACCESS);
    }
    let mut buf = vec![0u8; len];
    mem.read(&*caller, ptr, &mut buf)
        .map_err(|_| status::INVALID_MEMORY_ACCESS)?;
    Ok(buf)
}

/// Reads a UTF-8 string (lossy: names are only used for lookups and logs).
pub(crate) fn read_string(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String, i32> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes little-endian `u32` at `ptr`.
pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> Result<(), i32> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes bytes at `ptr`.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let mem = memory(caller).ok_or(status::INVALID_MEMORY_ACCESS)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|_| status::INVALID_MEMORY_ACCESS)
}

/// Copies `bytes` into memory the module allocates (ownership passes to it) and writes
/// `(ptr, len)` to the two return slots. Empty values are returned as `(0, 0)` without
/// allocating, as Envoy does.
pub(crate) fn return_bytes(caller: &mut Caller<'_, HostState>, bytes: &[u8], ret_ptr: i32, ret_len: i32) -> i32 {
    match copy_in(caller, bytes) {
        Ok(ptr) => {
            match write_u32(caller, ret_ptr, ptr).and_then(|()| write_u32(caller, ret_len, bytes.len() as u32)) {
                Ok(()) => status::OK,
                Err(s) => s,
            }
        }
        Err(s) => s,
    }
}

fn copy_in(caller: &mut Caller<'_, HostState>, bytes: &[u8]) -> Result<u32, i32> {
    if bytes.is_empty() {
        return Ok(0);
    }
    if bytes.len() > MAX_COPY {
        return Err(status::BAD_ARGUMENT);
    }
    let alloc = ["malloc", "proxy_on_memory_allocate"]
        .iter()
        .find_map(|name| caller.get_export(name).and_then(Extern::into_func))
        .ok_or(status::INVALID_MEMORY_ACCESS)?;
    let alloc = alloc
        .typed::<i32, i32>(&*caller)
        .map_err(|_| status::INVALID_MEMORY_ACCESS)?;
    // A trap inside the allocator (or its deadline) surfaces as the callback's trap.
    let ptr = alloc
        .call(&mut *caller, bytes.len() as i32)
        .map_err(|_| status::INVALID_MEMORY_ACCESS)?;
    if ptr == 0 {
        return Err(status::INVALID_MEMORY_ACCESS);
    }
    write(caller, ptr, bytes)?;
    Ok(ptr as u32)
}

/// Serializes a header map in the ABI's pairs format: count, all lengths, then every
/// key and value NUL-terminated.
pub(crate) fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(4 + pairs.iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>());
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parses the pairs format; `None` on any inconsistency (lengths past the end, missing
/// terminators, trailing bytes, more than 1024 pairs).
pub(crate) fn decode_pairs(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() || bytes == [0] {
        return Some(Vec::new());
    }
    let u32_at =
        |i: usize| -> Option<usize> { Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as usize) };
    let n = u32_at(0)?;
    if n > 1024 {
        return None;
    }
    let mut pos = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (kl, vl) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let key = bytes.get(pos..pos + kl)?.to_vec();
        pos += kl;
        if bytes.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        let value = bytes.get(pos..pos + vl)?.to_vec();
        pos += vl;
        if bytes.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        out.push((key, value));
    }
    (pos == bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_match_the_sdk_layout() {
        let map = vec![(b":method".to_vec(), b"GET".to_vec())];
        let bytes = encode_pairs(&map);
        assert_eq!(bytes, b"\x01\0\0\0\x07\0\0\0\x03\0\0\0:method\0GET\0");
        assert_eq!(decode_pairs(&bytes), Some(map));
        assert_eq!(decode_pairs(&[]), Some(vec![]));
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert_eq!(decode_pairs(b"\x01\0\0\0\xff\0\0\0\x01\0\0\0a\0b\0"), None);
        assert_eq!(decode_pairs(b"\x01\0\0\0\x01\0\0\0\x01\0\0\0a.b\0"), None);
        assert_eq!(decode_pairs(b"\xff\xff\xff\xff"), None);
    }
}
