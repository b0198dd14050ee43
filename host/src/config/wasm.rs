//! The `[wasm]` table: the embedded edge's filter chain and VM bounds.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;
use crate::edge::{PluginSpec, VmLimits, WasmSettings};

/// `[wasm]` table: the embedded edge (edge mode `wasm`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmFile {
    /// The filter chain, in order. Empty: our filter from `$SSE_FILTER_WASM` or
    /// `plugin/dist/sse_filter.wasm` (what `plugin/build.sh` writes).
    pub plugins: Vec<WasmPluginFile>,
    /// VMs per plugin (0: one per CPU core).
    pub vms: usize,
    /// CPU deadline of one filter callback, in ms.
    pub call_timeout_ms: u64,
    /// Memory cap of one VM, in MiB.
    pub memory_limit_mb: usize,
    /// Where compiled filters are cached (default `~/.cache/sse-host/wasmtime`; relative
    /// to the config file). `SSE_HOST_WASM_CACHE` overrides it.
    pub cache_dir: Option<PathBuf>,
}

/// One `[[wasm.plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmPluginFile {
    /// The `.wasm` file (relative to the config file).
    pub path: PathBuf,
    /// Name for logs and metrics (default: the file stem).
    pub name: Option<String>,
    /// Its configuration file (default: the policy JSON, which is what our filter takes).
    pub configuration_file: Option<PathBuf>,
}

impl Default for WasmFile {
    fn default() -> Self {
        let limits = VmLimits::default();
        Self {
            plugins: Vec::new(),
            vms: 0,
            call_timeout_ms: limits.call_timeout.as_millis() as u64,
            memory_limit_mb: limits.memory_bytes >> 20,
            cache_dir: None,
        }
    }
}

/// wasmtime's compile cache when the config names none: `~/.cache/sse-host/wasmtime`.
/// Without a home there is no cache rather than one in a shared temporary directory,
/// where another local user could plant compiled code for the host to run.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/sse-host/wasmtime"))
}

/// The filter `plugin/build.sh` produces, or `$SSE_FILTER_WASM`.
pub fn default_filter_path() -> PathBuf {
    std::env::var_os("SSE_FILTER_WASM").map_or_else(|| PathBuf::from("plugin/dist/sse_filter.wasm"), PathBuf::from)
}

impl WasmFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(
            (1..=10_000).contains(&self.call_timeout_ms),
            "wasm.call_timeout_ms: must be 1-10000",
        );
        p.check(
            (1..=4096).contains(&self.memory_limit_mb),
            "wasm.memory_limit_mb: must be 1-4096",
        );
    }

    /// Reads every module and configuration file, reporting each one that fails.
    pub(super) fn load(&self, policy_json: &str, problems: &mut Problems) -> WasmSettings {
        let defaults = [WasmPluginFile {
            path: default_filter_path(),
            name: Some("sse-filter".into()),
            configuration_file: None,
        }];
        let files = if self.plugins.is_empty() {
            &defaults[..]
        } else {
            &self.plugins[..]
        };
        let mut plugins = Vec::new();
        for (i, p) in files.iter().enumerate() {
            let name = p.name.clone().unwrap_or_else(|| {
                p.path
                    .file_stem()
                    .map_or(format!("plugin-{i}"), |s| s.to_string_lossy().into_owned())
            });
            let module = match std::fs::read(&p.path) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!(
                        "wasm.plugins[{i}]: cannot read {}: {e} (build our filter with plugin/build.sh)",
                        p.path.display()
                    ));
                    continue;
                }
            };
            let configuration = match &p.configuration_file {
                None => policy_json.as_bytes().to_vec(),
                Some(f) => match std::fs::read(f) {
                    Ok(c) => c,
                    Err(e) => {
                        problems.push(format!(
                            "wasm.plugins[{i}].configuration_file: cannot read {}: {e}",
                            f.display()
                        ));
                        continue;
                    }
                },
            };
            plugins.push(PluginSpec {
                name,
                module,
                configuration,
                upstream: None, // the app installs its own (`crate::admin::feed`)
            });
        }
        let vms = if self.vms == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.vms
        };
        let limits = VmLimits {
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            memory_bytes: self.memory_limit_mb << 20,
        };
        WasmSettings {
            plugins,
            vms,
            limits,
            cache_dir: self.cache_dir.clone().or_else(default_cache_dir),
        }
    }
}
