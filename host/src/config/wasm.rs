//! The `[wasm]` table: the embedded edge's filter chain and VM bounds.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::edge::{PluginSpec, VmLimits};

/// The embedded edge: filters (in order) and VM settings.
#[derive(Debug, Clone)]
pub struct WasmSettings {
    /// The filter chain; ours first.
    pub plugins: Vec<PluginSpec>,
    /// VMs per plugin (like Envoy's worker count).
    pub vms: usize,
    /// CPU and memory bounds of each VM.
    pub limits: VmLimits,
}

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
        Self {
            plugins: Vec::new(),
            vms: 0,
            call_timeout_ms: 100,
            memory_limit_mb: 64,
        }
    }
}

/// The filter `plugin/build.sh` produces, or `$SSE_FILTER_WASM`.
pub fn default_filter_path() -> PathBuf {
    std::env::var_os("SSE_FILTER_WASM").map_or_else(|| PathBuf::from("plugin/dist/sse_filter.wasm"), PathBuf::from)
}

impl WasmFile {
    /// Reads every module and configuration file, reporting each one that fails.
    pub(super) fn load(&self, policy_json: &str, problems: &mut Vec<String>) -> WasmSettings {
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
        WasmSettings { plugins, vms, limits }
    }
}
