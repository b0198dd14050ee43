//! Hostcalls this host does not offer: gRPC calls and foreign functions.
//! They answer with a status and never trap, so a filter can handle their absence.

use wasmtime::{Caller, Linker};

use crate::edge::shared::status as st;
use crate::edge::state::HostState;

type C<'a> = Caller<'a, HostState>;

pub(super) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |_: C<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 { st::UNIMPLEMENTED },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 { st::UNIMPLEMENTED },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| -> i32 { st::UNIMPLEMENTED },
    )?;
    l.func_wrap("env", "proxy_grpc_cancel", |_: C<'_>, _: i32| -> i32 {
        st::UNIMPLEMENTED
    })?;
    l.func_wrap("env", "proxy_grpc_close", |_: C<'_>, _: i32| -> i32 {
        st::UNIMPLEMENTED
    })?;
    l.func_wrap("env", "proxy_get_status", |_: C<'_>, _: i32, _: i32, _: i32| -> i32 {
        st::UNIMPLEMENTED
    })?;
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 { st::NOT_FOUND },
    )?;
    Ok(())
}
