//! # sse-filter
//!
//! The sse-edge proxy-wasm HTTP filter. Envoy loads it in front of the host, and the
//! host's embedded edge runs the very same `.wasm`. It is deliberately thin: it gathers
//! the request's method, path and token sources, asks [`sse_policy::decide`], and then
//! answers locally (denials, 429 over the company's connection limit) or forwards the
//! request with a signed identity. All rules live in `sse-policy`.
//!
//! Build: `plugin/build.sh` (output `target/wasm32-unknown-unknown/wasm-release/sse_filter.wasm`).
//!
//! # Layout
//! - `root`: parses the configuration once per VM (`on_configure`), seeds shared data.
//! - `request`: the per-request context: decide, strip, sign, count, unbuffer.
//! - `revocations`: the VM's revocation list, fetched by the root over HTTP callouts.
//! - `slots`: the CAS loop over shared data for per-company connection counts.
//! - `metrics`: allowed / denied-by-reason / active-stream metrics.

mod metrics;
mod request;
mod revocations;
mod root;
mod slots;

/// The module's entry points. `main!` exports `_initialize` with `#[no_mangle]`, which
/// the `unsafe_code` lint counts; it is the only such item in the filter.
#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(crate::root::FilterRoot::default())
        });
    }}
}
