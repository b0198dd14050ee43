//! The policy's `decide` over arbitrary requests: `sse_policy::fuzz::decide_request`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sse_policy::fuzz::decide_request(data);
});
