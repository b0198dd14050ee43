//! The stream fast path's request-head parser: `sse_host::fuzz::request_head`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_host::fuzz::request_head(data));
