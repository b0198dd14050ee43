//! The wasmtime engine (one per process, with an epoch ticker that bounds guest CPU),
//! module loading with ABI checks, and the linker with every hostcall.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine, Linker, Module};

use super::abi;
use super::state::HostState;
use super::EdgeError;

/// How often the engine's epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process-wide engine. Compiled code is cached on disk in `cache_dir` (wasmtime's
/// cache), so a restart does not recompile an unchanged module. One engine serves every
/// edge of the process: the first call's `cache_dir` is the one used.
pub(crate) fn engine(cache_dir: Option<&Path>) -> Result<&'static Engine, EdgeError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            if let Some(dir) = cache_dir {
                match cache(dir) {
                    Ok(cache) => {
                        config.cache(Some(cache));
                    }
                    Err(e) => tracing::warn!(dir = %dir.display(), "wasm compile cache disabled: {e}"),
                }
            }
            let engine = Engine::new(&config).map_err(|e| e.to_string())?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                })
                .map_err(|e| e.to_string())?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| EdgeError::Engine(e.clone()))
}

fn cache(dir: &Path) -> wasmtime::Result<Cache> {
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Cache::new(config)
}

/// Compiles a module and checks it is a proxy-wasm 0.2.x plugin this host can run:
/// the ABI marker, memory and allocator exports, and only known `env` imports.
pub(crate) fn load_module(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Module, EdgeError> {
    let refuse = |msg: String| EdgeError::Load {
        plugin: name.to_owned(),
        message: msg,
    };
    let module = Module::new(engine, bytes).map_err(|e| refuse(format!("not a valid wasm module: {e}")))?;
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    if !exports
        .iter()
        .any(|e| *e == "proxy_abi_version_0_2_1" || *e == "proxy_abi_version_0_2_0")
    {
        return Err(refuse(
            "not a proxy-wasm 0.2.x module (no proxy_abi_version_0_2_1 export)".into(),
        ));
    }
    for needed in ["memory", "proxy_on_context_create"] {
        if !exports.contains(&needed) {
            return Err(refuse(format!("missing export {needed}")));
        }
    }
    if !exports
        .iter()
        .any(|e| *e == "malloc" || *e == "proxy_on_memory_allocate")
    {
        return Err(refuse(
            "missing allocator export (malloc or proxy_on_memory_allocate)".into(),
        ));
    }
    let unknown: Vec<String> = module
        .imports()
        .filter(|i| i.module() != "env" || !abi::IMPORTS.contains(&i.name()))
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect();
    if !unknown.is_empty() {
        return Err(refuse(format!(
            "imports this host does not provide: {}",
            unknown.join(", ")
        )));
    }
    Ok(module)
}

/// A linker with every hostcall.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>, EdgeError> {
    let mut linker = Linker::new(engine);
    abi::add_to_linker(&mut linker).map_err(|e| EdgeError::Engine(e.to_string()))?;
    Ok(linker)
}
