//! Fuzzing the hostcalls (feature `fuzzing`): a module whose only code calls the host's
//! proxy-wasm imports with whatever arguments the fuzzer chooses (pointers, lengths,
//! enum values, and what its allocator returns), in any order, with a live HTTP context
//! and, when the input says so, a request body. A trap is an allowed answer; a host
//! panic is a finding (wasmtime keeps every access inside the module's memory; what is
//! fuzzed is the host's own bounds arithmetic and state handling around it).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use wasmtime::{Engine, Linker, Module, Store, StoreLimitsBuilder, Val, ValType};

use super::abi::IMPORTS;
use super::engine;
use super::shared::{Metrics, SharedData, SharedQueues};
use super::state::{HostState, PluginShared, StreamState};

/// Guest memory: one page the fuzzer fills, growable to four.
const PAGE: usize = 64 * 1024;

struct Harness {
    engine: Engine,
    linker: Linker<HostState>,
    module: Module,
    /// Per import, in `IMPORTS` order: its parameter types.
    params: Vec<Vec<ValType>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let engine = Engine::default();
        let linker = engine::linker(&engine).expect("linker");
        let mut store = Store::new(&engine, state());
        // Each import's type, as linked: (parameters, results).
        let types: Vec<(Vec<ValType>, Vec<ValType>)> = IMPORTS
            .iter()
            .map(|name| match linker.get(&mut store, "env", name) {
                Ok(wasmtime::Extern::Func(f)) => {
                    let ty = f.ty(&store);
                    (ty.params().collect(), ty.results().collect())
                }
                _ => panic!("{name} is listed but not linked"),
            })
            .collect();
        let list = |tys: &[ValType]| tys.iter().map(wat_type).collect::<Vec<_>>().join(" ");
        let mut wat = String::from("(module\n");
        for (i, (name, (p, r))) in IMPORTS.iter().zip(&types).enumerate() {
            let _ = writeln!(
                wat,
                r#"(import "env" "{name}" (func $f{i} (param {}) (result {})))"#,
                list(p),
                list(r)
            );
        }
        wat.push_str(
            r#"(memory (export "memory") 1 4)
(global $next (mut i32) (i32.const 0))
(func (export "set_alloc") (param i32) (global.set $next (local.get 0)))
(func (export "proxy_on_memory_allocate") (param i32) (result i32) (global.get $next))
"#,
        );
        // One export per import that forwards its arguments, so each hostcall runs with
        // a calling instance (its memory and allocator), as from a real filter.
        for (i, (p, r)) in types.iter().enumerate() {
            let args: String = (0..p.len()).map(|a| format!("(local.get {a}) ")).collect();
            let _ = writeln!(
                wat,
                r#"(func (export "call{i}") (param {}) (result {}) (call $f{i} {args}))"#,
                list(p),
                list(r)
            );
        }
        wat.push(')');
        let wasm = wat::parse_str(&wat).expect("the harness module parses");
        let module = Module::new(&engine, wasm).expect("the harness module compiles");
        Harness {
            engine,
            linker,
            module,
            params: types.into_iter().map(|(p, _)| p).collect(),
        }
    })
}

fn wat_type(t: &ValType) -> &'static str {
    match t {
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => "i32",
    }
}

/// A fresh plugin (shared data, queues, metrics) per input, so inputs do not add up.
fn state() -> HostState {
    let shared = Arc::new(PluginShared {
        name: "fuzz".into(),
        configuration: b"{}".to_vec(),
        data: SharedData::default(),
        queues: SharedQueues::default(),
        metrics: Metrics::default(),
        upstream: None,
    });
    let limits = StoreLimitsBuilder::new()
        .memory_size(4 * PAGE)
        .instances(1)
        .memories(1)
        .build();
    HostState::new(shared, limits)
}

/// Reads fuzzer bytes as a little-endian number, zero-padded.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

/// Runs one input: a length byte (x16) says how much of what follows becomes the guest
/// memory's start, the live context's request headers and (odd length byte) the request
/// body the body hostcalls read; the rest is a list of calls, each an import index,
/// what the allocator will return, and the import's arguments.
pub fn hostcalls(mut data: &[u8]) {
    let h = harness();
    let mut store = Store::new(&h.engine, state());
    store.limiter(|s| &mut s.limits);
    let Ok(instance) = h.linker.instantiate(&mut store, &h.module) else {
        return;
    };
    let memory = instance.get_memory(&mut store, "memory").expect("memory export");
    let [len] = take::<1>(&mut data);
    let seed = &data[..(usize::from(len) * 16).min(data.len())];
    data = &data[seed.len()..];
    memory.data_mut(&mut store)[..seed.len()].copy_from_slice(seed);
    let headers = seed
        .chunks(16)
        .map(|c| (c[..c.len() / 2].to_vec(), c[c.len() / 2..].to_vec()))
        .collect();
    let d = store.data_mut();
    d.current = 2;
    d.request_body = (len % 2 == 1).then(|| seed.to_vec());
    d.streams.insert(
        2,
        StreamState {
            request_headers: headers,
            ..StreamState::default()
        },
    );
    let set_alloc = instance
        .get_typed_func::<i32, ()>(&mut store, "set_alloc")
        .expect("set_alloc export");
    for _ in 0..64 {
        if data.is_empty() {
            break;
        }
        let [which] = take::<1>(&mut data);
        let index = usize::from(which) % IMPORTS.len();
        let alloc = i32::from_le_bytes(take::<4>(&mut data));
        let _ = set_alloc.call(&mut store, alloc);
        let args: Vec<Val> = h.params[index]
            .iter()
            .map(|t| match t {
                ValType::I64 => Val::I64(i64::from_le_bytes(take::<8>(&mut data))),
                _ => Val::I32(i32::from_le_bytes(take::<4>(&mut data))),
            })
            .collect();
        let Some(f) = instance.get_func(&mut store, &format!("call{index}")) else {
            continue;
        };
        let mut results = vec![Val::I32(0); f.ty(&store).results().len()];
        // A trap is an answer like any other; the host must not panic.
        let _ = f.call(&mut store, &args, &mut results);
    }
}
