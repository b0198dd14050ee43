//! Logging, time, timers, stream control, local replies, contexts and metrics.

use std::sync::atomic::Ordering;

use wasmtime::{Caller, Linker};

use super::status;
use crate::edge::memory::{self, decode_pairs};
use crate::edge::shared::{status as st, MetricKind};
use crate::edge::state::{HostState, LocalReply};

type C<'a> = Caller<'a, HostState>;

pub(super) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> i32 {
            // Always OK: the SDK unwraps this call, even inside its panic hook.
            let msg =
                memory::read_string(&mut c, ptr, len.min(64 * 1024)).unwrap_or_else(|_| "<unreadable message>".into());
            let plugin = c.data().plugin.name.clone();
            match level {
                0 | 1 => tracing::debug!(plugin, "{msg}"),
                2 => tracing::info!(plugin, "{msg}"),
                3 => tracing::warn!(plugin, "{msg}"),
                _ => tracing::error!(plugin, "{msg}"),
            }
            st::OK
        },
    )?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, ret: i32| -> i32 {
        let level = match tracing::level_filters::LevelFilter::current() {
            tracing::level_filters::LevelFilter::TRACE => 0,
            tracing::level_filters::LevelFilter::DEBUG => 1,
            tracing::level_filters::LevelFilter::INFO => 2,
            tracing::level_filters::LevelFilter::WARN => 3,
            _ => 4,
        };
        status(memory::write_u32(&mut c, ret, level))
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> i32 {
            let nanos = crate::clock::unix_nanos();
            status(memory::write(&mut c, ret, &nanos.to_le_bytes()))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> i32 {
            c.data_mut().tick_period_ms = period.max(0) as u32;
            st::OK
        },
    )?;
    l.func_wrap("env", "proxy_continue_stream", |_: C<'_>, _stream: i32| -> i32 {
        st::OK
    })?;
    l.func_wrap("env", "proxy_close_stream", |mut c: C<'_>, _stream: i32| -> i32 {
        match c.data_mut().stream() {
            Some(s) => {
                s.closed = true;
                st::OK
            }
            None => st::NOT_FOUND,
        }
    })?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>, code: i32, _dp: i32, _dl: i32, bp: i32, bl: i32, hp: i32, hl: i32, _grpc: i32| -> i32 {
            let body = match memory::read(&mut c, bp, bl) {
                Ok(b) => b,
                Err(s) => return s,
            };
            let raw = match memory::read(&mut c, hp, hl) {
                Ok(b) => b,
                Err(s) => return s,
            };
            let Some(headers) = decode_pairs(&raw) else {
                return st::BAD_ARGUMENT;
            };
            let Ok(status) = u16::try_from(code) else {
                return st::BAD_ARGUMENT;
            };
            if !(200..=599).contains(&status) {
                return st::BAD_ARGUMENT;
            }
            match c.data_mut().stream() {
                Some(s) => {
                    s.local_reply = Some(LocalReply { status, headers, body });
                    st::OK
                }
                None => st::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap("env", "proxy_set_effective_context", |mut c: C<'_>, id: i32| -> i32 {
        let id = id as u32;
        let d = c.data_mut();
        if id == d.root_id || d.streams.contains_key(&id) {
            d.current = id;
            st::OK
        } else {
            st::BAD_ARGUMENT
        }
    })?;
    l.func_wrap("env", "proxy_done", |_: C<'_>| -> i32 { st::NOT_FOUND })?;
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nl: i32, ret: i32| -> i32 {
            let kind = match kind {
                0 => MetricKind::Counter,
                1 => MetricKind::Gauge,
                2 => MetricKind::Histogram,
                _ => return st::BAD_ARGUMENT,
            };
            let name = match memory::read_string(&mut c, np, nl.min(1024)) {
                Ok(n) if !n.is_empty() => n,
                Ok(_) => return st::BAD_ARGUMENT,
                Err(s) => return s,
            };
            match c.data().plugin.metrics.define(kind, &name) {
                Some(id) => status(memory::write_u32(&mut c, ret, id)),
                None => st::BAD_ARGUMENT,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: C<'_>, id: i32, delta: i64| -> i32 {
            c.data().plugin.metrics.update(id as u32, |kind, v| {
                if kind == MetricKind::Counter && delta <= 0 {
                    return st::BAD_ARGUMENT; // counters only grow (as in Envoy)
                }
                v.fetch_add(delta, Ordering::Relaxed);
                st::OK
            })
        },
    )?;
    l.func_wrap("env", "proxy_record_metric", |c: C<'_>, id: i32, value: i64| -> i32 {
        c.data().plugin.metrics.update(id as u32, |_, v| {
            v.store(value, Ordering::Relaxed);
            st::OK
        })
    })?;
    l.func_wrap("env", "proxy_get_metric", |mut c: C<'_>, id: i32, ret: i32| -> i32 {
        match c.data().plugin.metrics.get(id as u32) {
            Some(v) => status(memory::write(&mut c, ret, &(v as u64).to_le_bytes())),
            None => st::NOT_FOUND,
        }
    })?;
    Ok(())
}
