//! Policy and host configuration parsing: `sse_policy::fuzz::policy_config` and
//! `sse_host::fuzz::host_config` on the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sse_policy::fuzz::policy_config(data);
    sse_host::fuzz::host_config(data);
});
