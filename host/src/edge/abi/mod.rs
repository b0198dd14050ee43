//! The proxy-wasm ABI 0.2.1 host functions, module `env`, grouped by area. Every
//! function the Rust SDK imports is defined; the ones this host does not support return
//! `UNIMPLEMENTED` (or `NOT_FOUND` where the ABI says so) and never trap.

mod callout;
mod control;
mod data;
mod headers;
mod stubs;

use wasmtime::Linker;

use super::state::HostState;

/// Links every supported import.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    callout::add_to_linker(linker)?;
    control::add_to_linker(linker)?;
    data::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    stubs::add_to_linker(linker)?;
    Ok(())
}

/// Every import name this host provides (a module importing anything else is refused).
pub(crate) const IMPORTS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_size",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
];

/// `Ok(())` → `OK`, `Err(status)` → status.
fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(super::shared::status::OK)
}
