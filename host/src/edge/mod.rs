//! The embedded edge: a proxy-wasm (ABI 0.2.1) host on wasmtime, so the same `.wasm`
//! filter Envoy loads runs in front of the hub in-process.
//!
//! Like Envoy: one VM (store + instance) per worker slot, shared data, queues and
//! metrics common to all VMs of a plugin (so per-company limits are exact across
//! them), the lifecycle in Envoy's order (`on_request_headers`, `on_response_headers`,
//! then `on_log`, `on_done`, `on_delete` when the stream ends for any reason). Unlike a
//! trusting host: every guest pointer is bounds-checked, each call has a CPU deadline
//! (epoch interruption) and each VM a memory cap; a trap fails the request closed (503)
//! and the VM is replaced. There is no `unsafe` here. Response bodies are not exposed
//! to filters: chunks pass straight through, never buffered.
//!
//! # Layout
//! - `engine`: the process-wide engine, module checks, the linker.
//! - `abi/`: the hostcalls by area (control, headers, data, stubs).
//! - `memory`: bounds-checked guest memory access and the pairs encoding.
//! - `state`, `shared`: per-VM state; what a plugin's VMs share.
//! - `vm`, `plugin`: one VM and its lifecycle; a plugin's VMs and their replacement.

mod abi;
mod chain;
mod engine;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod memory;
mod plugin;
mod shared;
mod state;
mod vm;

use std::sync::Arc;
use std::time::Duration;

pub use chain::{Paused, Verdict};
pub use shared::{MetricKind, MetricSample};
pub use state::{HeaderMap, LocalReply, Upstream, UpstreamFn};

use plugin::Plugin;

/// Why the edge could not load or run a filter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    /// The wasm engine could not start.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The module is unusable (not proxy-wasm, unknown imports, unreadable).
    #[error("plugin {plugin}: {message}")]
    Load {
        /// Plugin name.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// The plugin refused to start or to take its configuration.
    #[error("plugin {plugin}: {message}")]
    Refused {
        /// Plugin name.
        plugin: String,
        /// What happened.
        message: String,
    },
    /// The module trapped, ran past its deadline or exceeded its memory.
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The filter stopped the request without answering it.
    #[error("plugin {0} paused or reset the request without a reply")]
    Stopped(String),
}

/// One filter of the chain.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Name (logs, metrics, the `plugin_name` property).
    pub name: String,
    /// The module bytes.
    pub module: Vec<u8>,
    /// The plugin configuration (what Envoy passes as `configuration`).
    pub configuration: Vec<u8>,
    /// Where its HTTP callouts go (`None`: refused).
    pub upstream: Option<Upstream>,
}

/// The embedded edge as configured (`[wasm]`): filters in order and VM settings.
#[derive(Debug, Clone)]
pub struct WasmSettings {
    /// The filter chain; ours first.
    pub plugins: Vec<PluginSpec>,
    /// VMs per plugin (like Envoy's worker count).
    pub vms: usize,
    /// CPU and memory bounds of each VM.
    pub limits: VmLimits,
    /// Where wasmtime caches compiled code (`None`: compile at every start). The engine
    /// is per process: the first edge loaded sets it.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// Resource bounds of each VM.
#[derive(Debug, Clone, Copy)]
pub struct VmLimits {
    /// Longest a single callback may run.
    pub call_timeout: Duration,
    /// Largest linear memory.
    pub memory_bytes: usize,
}

/// The `[wasm]` table's defaults, defined once here.
impl Default for VmLimits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(100),
            memory_bytes: 64 << 20,
        }
    }
}

/// The filter chain, in order.
#[derive(Debug, Clone)]
pub struct WasmEdge {
    plugins: Arc<Vec<Plugin>>,
}

/// A request's contexts in the chain's VMs. Dropping it ends them (`on_log`, `on_done`,
/// `on_delete`), so it lives inside the response body: the filter sees the stream end
/// exactly when the client does.
#[derive(Debug)]
pub struct Contexts {
    plugins: Arc<Vec<Plugin>>,
    held: Vec<(usize, usize, u64, u32)>, // (plugin, vm, generation, context)
    /// The company whose connection slot a filter took for this stream, if any (boxed
    /// `str`: this lives as long as the stream).
    slot: Option<Box<str>>,
}

impl Contexts {
    /// Records that the filter admitted this request as a stream of `company` and so
    /// took one of its connection slots. Should a VM die before the stream ends, the
    /// host gives the slot back itself (the dead VM's `on_log` never runs): counts stay
    /// exact whatever happens to a VM.
    pub fn took_slot(&mut self, company: String) {
        self.slot = Some(company.into_boxed_str());
    }
}

impl WasmEdge {
    /// Loads and starts every plugin with `vms` VMs each. Fails (closed) if any module is
    /// unusable or refuses its configuration.
    pub fn load(settings: &WasmSettings) -> Result<Self, EdgeError> {
        let engine = engine::engine(settings.cache_dir.as_deref())?;
        let plugins = settings
            .plugins
            .iter()
            .map(|s| Plugin::load(engine, s, settings.vms, settings.limits))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            plugins: Arc::new(plugins),
        })
    }

    /// Runs response headers through the chain in reverse order (as Envoy's encoders).
    pub fn on_response(&self, contexts: &Contexts, mut headers: HeaderMap) -> Result<HeaderMap, EdgeError> {
        for &(p, vm, generation, ctx) in contexts.held.iter().rev() {
            let run = self.plugins[p].with_same_vm(vm, generation, |v| {
                v.response_headers(ctx, std::mem::take(&mut headers))
            });
            match run {
                Some(Ok(h)) => headers = h,
                Some(Err(e)) => return Err(e),
                None => {} // that VM died earlier: its filter no longer sees this stream
            }
        }
        Ok(headers)
    }

    /// Delivers due timer ticks (call about every 50 ms).
    pub fn tick(&self) {
        for plugin in self.plugins.iter() {
            plugin.tick();
        }
    }

    /// Every plugin metric, as `(plugin, sample)`.
    pub fn metrics(&self) -> Vec<(String, MetricSample)> {
        self.plugins
            .iter()
            .flat_map(|p| {
                p.shared
                    .metrics
                    .samples()
                    .into_iter()
                    .map(|s| (p.shared.name.clone(), s))
            })
            .collect()
    }

    /// HTTP contexts alive in all VMs (0 when every stream was finished).
    pub fn live_contexts(&self) -> usize {
        self.plugins.iter().map(Plugin::live_contexts).sum()
    }

    /// A value in a plugin's shared data (tests and diagnostics).
    pub fn shared_data(&self, plugin: usize, key: &str) -> Option<Vec<u8>> {
        self.plugins
            .get(plugin)?
            .shared
            .data
            .get(key.as_bytes())
            .map(|(v, _)| v)
    }
}

impl Drop for Contexts {
    fn drop(&mut self) {
        for &(p, vm, generation, ctx) in self.held.iter().rev() {
            let plugin = &self.plugins[p];
            let ended = plugin.with_same_vm(vm, generation, |v| v.finish(ctx));
            // The context's VM was replaced: its filter cannot give the slot back. (When
            // `finish` itself traps, whether `on_log` gave it back first is unknown;
            // giving it back here could free it twice and let a company over its limit,
            // so it is held: fail closed.)
            if let (None, Some(company)) = (ended, &self.slot) {
                plugin.shared.data.give_back_slot(company);
            }
        }
    }
}

impl WasmEdge {
    /// Replaces VM `vm` of plugin `plugin` as a trap would (diagnostics and tests of what
    /// outlives a VM).
    pub fn replace_vm(&self, plugin: usize, vm: usize) {
        if let Some(p) = self.plugins.get(plugin) {
            p.replace_vm(vm);
        }
    }
}
