//! The built filter module: its shape, and its behaviour driven through the proxy-wasm
//! ABI by the host's embedded edge (wasmtime), exactly as a proxy drives it.

mod abi_decisions;
mod hostile;
mod module;
mod revocations;
mod slots;
