//! Signed identity headers, changed by the fuzzer: `sse_policy::fuzz::verify_identity`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_policy::fuzz::verify_identity(data));
