//! One VM: a `Store` and an instance of a plugin, driven through the proxy-wasm
//! lifecycle in Envoy's order. Every call runs under a CPU deadline; a trap is returned
//! as an error and the VM must not be used again.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::{Instance, Linker, Module, Store, StoreLimitsBuilder, TypedFunc};

use super::engine::EPOCH_TICK;
use super::state::{HeaderMap, HostState, LocalReply, PluginShared, StreamState};
use super::{EdgeError, VmLimits};

/// What a filter decided on request headers.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Forward, with the (possibly modified) headers.
    Continue(HeaderMap),
    /// Answer with the filter's local reply.
    Reply(LocalReply),
    /// The filter paused on headers to see the body first (`on_request_body` follows).
    Paused,
    /// The filter paused or reset the stream without a reply (callouts are not
    /// supported here): fail closed.
    Stopped,
}

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type OnCallResponse = TypedFunc<(i32, i32, i32, i32, i32), ()>;

struct Callbacks {
    context_create: TypedFunc<(i32, i32), ()>,
    request_headers: TypedFunc<(i32, i32, i32), i32>,
    request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    response_headers: TypedFunc<(i32, i32, i32), i32>,
    log: TypedFunc<i32, ()>,
    done: TypedFunc<i32, i32>,
    delete: TypedFunc<i32, ()>,
    tick: Option<TypedFunc<i32, ()>>,
    call_response: Option<OnCallResponse>,
}

pub(crate) struct Vm {
    store: Store<HostState>,
    f: Callbacks,
    next_context: u32,
    deadline_ticks: u64,
}

impl Vm {
    /// Instantiates, initializes, starts and configures a VM. Fails closed: a module
    /// that refuses its configuration (`on_configure` false) is an error.
    pub(crate) fn new(
        module: &Module,
        linker: &Linker<HostState>,
        plugin: Arc<PluginShared>,
        limits: &VmLimits,
    ) -> Result<Self, EdgeError> {
        let name = plugin.name.clone();
        let trap = |e: wasmtime::Error| EdgeError::Trap {
            plugin: name.clone(),
            message: format!("{e:#}"),
        };
        let config_len = plugin.configuration.len() as i32;
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(1)
            .tables(4)
            .memories(1)
            .build();
        let mut store = Store::new(module.engine(), HostState::new(plugin, store_limits));
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = (limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(deadline_ticks);
        let instance: Instance = linker.instantiate(&mut store, module).map_err(trap)?;
        let get = |store: &mut Store<HostState>, n: &str| instance.get_func(&mut *store, n);
        let missing = |n: &str| EdgeError::Load {
            plugin: name.clone(),
            message: format!("export {n} has the wrong type or is missing"),
        };
        macro_rules! typed {
            ($n:literal) => {
                instance.get_typed_func(&mut store, $n).map_err(|_| missing($n))?
            };
        }
        let f = Callbacks {
            context_create: typed!("proxy_on_context_create"),
            request_headers: typed!("proxy_on_request_headers"),
            request_body: instance.get_typed_func(&mut store, "proxy_on_request_body").ok(),
            response_headers: typed!("proxy_on_response_headers"),
            log: typed!("proxy_on_log"),
            done: typed!("proxy_on_done"),
            delete: typed!("proxy_on_delete"),
            tick: instance.get_typed_func(&mut store, "proxy_on_tick").ok(),
            call_response: instance.get_typed_func(&mut store, "proxy_on_http_call_response").ok(),
        };
        let vm_start: TypedFunc<(i32, i32), i32> = typed!("proxy_on_vm_start");
        let configure: TypedFunc<(i32, i32), i32> = typed!("proxy_on_configure");
        if let Some(init) = get(&mut store, "_initialize").or_else(|| get(&mut store, "_start")) {
            init.typed::<(), ()>(&store)
                .map_err(|_| missing("_initialize"))?
                .call(&mut store, ())
                .map_err(trap)?;
        }
        let mut vm = Self {
            store,
            f,
            next_context: 2,
            deadline_ticks,
        };
        vm.arm();
        vm.f.context_create.call(&mut vm.store, (1, 0)).map_err(trap)?;
        vm.arm();
        if vm_start.call(&mut vm.store, (1, 0)).map_err(trap)? == 0 {
            return Err(EdgeError::Refused {
                plugin: name,
                message: "proxy_on_vm_start returned false".into(),
            });
        }
        vm.arm();
        if configure.call(&mut vm.store, (1, config_len)).map_err(trap)? == 0 {
            return Err(EdgeError::Refused {
                plugin: name,
                message: "the filter refused its configuration (see its log)".into(),
            });
        }
        vm.answer_calls().map_err(trap)?;
        Ok(vm)
    }

    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.deadline_ticks);
    }

    fn trap(&self, e: wasmtime::Error) -> EdgeError {
        EdgeError::Trap {
            plugin: self.store.data().plugin.name.clone(),
            message: format!("{e:#}"),
        }
    }

    /// Creates an HTTP context and runs `on_request_headers` (`end_of_stream`: no body
    /// follows); returns its id.
    pub(crate) fn request_headers(
        &mut self,
        headers: HeaderMap,
        end_of_stream: bool,
        source: Option<SocketAddr>,
        connection_id: u64,
    ) -> Result<(u32, Outcome), EdgeError> {
        let ctx = self.next_context;
        self.next_context = self.next_context.checked_add(1).unwrap_or(2);
        let count = headers.len() as i32;
        let d = self.store.data_mut();
        d.streams.insert(
            ctx,
            StreamState {
                request_headers: headers,
                source,
                connection_id,
                ..Default::default()
            },
        );
        d.current = ctx;
        self.arm();
        self.f
            .context_create
            .call(&mut self.store, (ctx as i32, 1))
            .map_err(|e| self.trap(e))?;
        self.store.data_mut().current = ctx;
        self.arm();
        let action = self
            .f
            .request_headers
            .call(&mut self.store, (ctx as i32, count, i32::from(end_of_stream)))
            .map_err(|e| self.trap(e))?;
        Ok((ctx, self.outcome(ctx, action, !end_of_stream)))
    }

    /// Runs `on_request_body` with the whole body (the host collected it first, so
    /// `end_of_stream` is true); returns what the filter decided then.
    pub(crate) fn request_body(&mut self, ctx: u32, body: &[u8]) -> Result<Outcome, EdgeError> {
        let Some(call) = self.f.request_body.clone() else {
            return Ok(self.outcome(ctx, 0, false));
        };
        let d = self.store.data_mut();
        d.current = ctx;
        d.request_body = Some(body.to_vec());
        self.arm();
        let action = call.call(&mut self.store, (ctx as i32, body.len() as i32, 1));
        self.store.data_mut().request_body = None;
        let action = action.map_err(|e| self.trap(e))?;
        Ok(self.outcome(ctx, action, false))
    }

    /// What a request callback that returned `action` decided.
    fn outcome(&mut self, ctx: u32, action: i32, body_follows: bool) -> Outcome {
        let Some(s) = self.store.data_mut().streams.get_mut(&ctx) else {
            return Outcome::Stopped;
        };
        match (s.local_reply.take(), s.closed, action) {
            (Some(reply), _, _) => Outcome::Reply(reply),
            (None, false, 0) => Outcome::Continue(s.request_headers.clone()),
            (None, false, 1) if body_follows => Outcome::Paused,
            _ => Outcome::Stopped,
        }
    }

    /// Runs `on_response_headers` for a context; returns the (possibly modified) headers.
    pub(crate) fn response_headers(&mut self, ctx: u32, headers: HeaderMap) -> Result<HeaderMap, EdgeError> {
        let count = headers.len() as i32;
        let d = self.store.data_mut();
        let Some(s) = d.streams.get_mut(&ctx) else {
            return Ok(headers);
        };
        s.response_headers = headers;
        d.current = ctx;
        self.arm();
        self.f
            .response_headers
            .call(&mut self.store, (ctx as i32, count, 0))
            .map_err(|e| self.trap(e))?;
        let s = self.store.data_mut().streams.get_mut(&ctx).expect("checked above");
        Ok(std::mem::take(&mut s.response_headers))
    }

    /// Ends a context as Envoy does at stream end: `on_log`, `on_done`, `on_delete`.
    pub(crate) fn finish(&mut self, ctx: u32) -> Result<(), EdgeError> {
        if !self.store.data().streams.contains_key(&ctx) {
            return Ok(());
        }
        self.store.data_mut().current = ctx;
        let c = ctx as i32;
        let result = (|| {
            self.arm();
            self.f.log.call(&mut self.store, c)?;
            self.arm();
            self.f.done.call(&mut self.store, c)?;
            self.arm();
            self.f.delete.call(&mut self.store, c)
        })();
        self.store.data_mut().streams.remove(&ctx);
        result.map_err(|e| self.trap(e))
    }

    /// Runs `on_tick` on the root context if the plugin asked for ticks.
    pub(crate) fn tick(&mut self) -> Result<(), EdgeError> {
        let Some(tick) = self.f.tick.clone().filter(|_| self.store.data().tick_period_ms > 0) else {
            return Ok(());
        };
        self.store.data_mut().current = 1;
        self.arm();
        tick.call(&mut self.store, 1).map_err(|e| self.trap(e))?;
        self.answer_calls().map_err(|e| self.trap(e))
    }

    /// Answers the callouts the last callback made, each through
    /// `proxy_on_http_call_response` on the context that made it (if it still lives).
    /// A response's own callouts wait for the next callback: no recursion.
    fn answer_calls(&mut self) -> wasmtime::Result<()> {
        let calls = std::mem::take(&mut self.store.data_mut().calls);
        let Some(on_response) = self.f.call_response.clone() else {
            return Ok(());
        };
        for call in calls {
            let d = self.store.data_mut();
            if call.context != d.root_id && !d.streams.contains_key(&call.context) {
                continue;
            }
            let upstream = d.plugin.upstream.clone();
            let reply = upstream.and_then(|u| (u.0)(&call.cluster, &call.headers, &call.body));
            let (headers, body) = match reply {
                Some(r) => {
                    let mut h = vec![(b":status".to_vec(), r.status.to_string().into_bytes())];
                    h.extend(r.headers);
                    (h, r.body)
                }
                None => (Vec::new(), Vec::new()),
            };
            let (n_headers, body_len) = (headers.len() as i32, body.len() as i32);
            d.call_response = Some((headers, body));
            d.current = call.context;
            self.arm();
            let args = (call.context as i32, call.token as i32, n_headers, body_len, 0);
            let result = on_response.call(&mut self.store, args);
            self.store.data_mut().call_response = None;
            result?;
        }
        Ok(())
    }

    /// The tick period the plugin set, in milliseconds (0: none).
    pub(crate) fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// Live contexts (for tests of leak-freedom).
    pub(crate) fn live_contexts(&self) -> usize {
        self.store.data().streams.len()
    }
}
