//! The embedded edge's proxy-wasm hostcalls with arbitrary pointers, lengths and
//! allocator answers: `sse_host::fuzz::hostcalls`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_host::fuzz::hostcalls(data));
