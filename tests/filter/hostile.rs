//! Hostile modules: out-of-range pointers, huge lengths, endless loops, traps, memory
//! bombs and foreign imports. The host answers 503 (or refuses the module) and stays up.

use std::time::Duration;

use sse_host::edge::{EdgeError, PluginSpec, Verdict, VmLimits, WasmEdge};

use crate::abi_decisions::request;

fn module(imports: &str, body: &str) -> Vec<u8> {
    sse_tests::wat_module(imports, "i32.const 1", body)
}

fn load(bytes: Vec<u8>) -> Result<WasmEdge, EdgeError> {
    let limits = VmLimits {
        call_timeout: Duration::from_millis(100),
        memory_bytes: 8 << 20,
    };
    WasmEdge::load(&sse_host::edge::WasmSettings {
        plugins: vec![PluginSpec {
            name: "hostile".into(),
            module: bytes,
            configuration: b"{}".to_vec(),
            upstream: None,
        }],
        vms: 1,
        limits,
        cache_dir: None,
    })
}

fn run(edge: &WasmEdge, extra: &[(&str, &str)]) -> Result<Verdict, EdgeError> {
    edge.on_request(request("/sse/stream", extra), false, None, 1)
        .map(|(v, _)| v)
}

/// Traps unless `expr` evaluates to `status`.
fn expect_status(expr: &str, status: i32) -> String {
    format!("(if (i32.ne {expr} (i32.const {status})) (then unreachable))")
}

#[test]
fn out_of_range_pointers_and_huge_lengths_get_statuses_not_host_access() {
    let body = [
        // key pointer far outside memory
        expect_status(
            "(call $get (i32.const 0) (i32.const 0xFFFFFFF0) (i32.const 64) (i32.const 0) (i32.const 4))",
            6,
        ),
        // a 2 GiB key length
        expect_status(
            "(call $get (i32.const 0) (i32.const 16) (i32.const 0x7FFFFFFF) (i32.const 0) (i32.const 4))",
            6,
        ),
        // a found value whose return slot is out of range
        expect_status(
            "(call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 0xFFFFFFFC) (i32.const 8))",
            6,
        ),
        // a 2 GiB shared-data value
        expect_status(
            "(call $set (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 0x7FFFFFFF) (i32.const 0))",
            2,
        ),
        // logging always answers OK, even for unreadable messages
        expect_status("(call $log (i32.const 2) (i32.const 0xFFFFFF00) (i32.const 4096))", 0),
    ]
    .join("\n")
        + " i32.const 0";
    let edge = load(module("", &body)).unwrap();
    assert!(
        matches!(run(&edge, &[]), Ok(Verdict::Forward(_))),
        "each hostcall answered with the expected status"
    );
}

#[test]
fn an_endless_loop_hits_the_deadline_and_the_vm_is_replaced() {
    let body = "(if (i32.eqz (call $get (i32.const 0) (i32.const 32) (i32.const 6) (i32.const 8) (i32.const 12))) (then (loop $l (br $l)))) i32.const 0";
    let edge = load(module("", body)).unwrap();
    let err = run(&edge, &[("x-loop", "1")]).unwrap_err();
    assert!(matches!(err, EdgeError::Trap { .. }), "{err}");
    assert!(
        matches!(run(&edge, &[]), Ok(Verdict::Forward(_))),
        "a fresh VM serves the next request"
    );
}

#[test]
fn a_trap_fails_the_request_closed_and_the_host_goes_on() {
    let edge = load(module("", "unreachable")).unwrap();
    for _ in 0..3 {
        assert!(matches!(run(&edge, &[]), Err(EdgeError::Trap { .. })));
    }
}

#[test]
fn a_memory_bomb_is_capped() {
    // Grow 1 MiB at a time until refused, then report by trapping.
    let body = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
    let edge = load(module("", body)).unwrap();
    assert!(matches!(run(&edge, &[]), Err(EdgeError::Trap { .. })));
}

#[test]
fn modules_the_host_cannot_run_are_refused_at_load() {
    let wasi = module(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "i32.const 0",
    );
    let err = load(wasi).unwrap_err();
    assert!(err.to_string().contains("wasi_snapshot_preview1.fd_write"), "{err}");
    let not_proxy_wasm = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    assert!(load(not_proxy_wasm)
        .unwrap_err()
        .to_string()
        .contains("proxy_abi_version"));
    assert!(load(b"not wasm at all".to_vec()).is_err());
}

#[test]
fn a_module_refusing_its_configuration_fails_closed() {
    let err = load(sse_tests::wat_module("", "i32.const 0", "i32.const 0")).unwrap_err();
    assert!(matches!(err, EdgeError::Refused { .. }), "{err}");
}

/// A module that uses timers, shared queues, metrics and properties like a real filter.
fn featured() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick_period (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ticks")
  (data (i32.const 32) "q")
  (data (i32.const 48) "request\00path")
  (data (i32.const 64) "hello")
  (global $heap (mut i32) (i32.const 1024))
  (global $metric (mut i32) (i32.const 0))
  (global $queue (mut i32) (i32.const 0))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick_period (i32.const 10)))
    (drop (call $define (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 200)))
    (global.set $metric (i32.load (i32.const 200)))
    (drop (call $register (i32.const 32) (i32.const 1) (i32.const 204)))
    (global.set $queue (i32.load (i32.const 204)))
    i32.const 1)
  (func (export "proxy_on_tick") (param i32)
    (drop (call $inc (global.get $metric) (i64.const 1))))
  ;; Echo the request path back, after a round trip through the shared queue.
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (call $prop (i32.const 48) (i32.const 12) (i32.const 208) (i32.const 212)) (then unreachable))
    (if (call $enqueue (global.get $queue) (i32.load (i32.const 208)) (i32.load (i32.const 212))) (then unreachable))
    (if (call $dequeue (global.get $queue) (i32.const 216) (i32.const 220)) (then unreachable))
    (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0) (i32.load (i32.const 216)) (i32.load (i32.const 220)) (i32.const 0) (i32.const 0) (i32.const -1)))
    i32.const 1)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32)))"#,
    )
    .unwrap()
}

#[test]
fn timers_metrics_queues_and_properties_work_like_envoys() {
    let edge = load(featured()).unwrap();
    let ticks = || {
        edge.metrics()
            .iter()
            .find(|(_, m)| m.name == "ticks")
            .map_or(0, |(_, m)| m.value)
    };
    assert_eq!(ticks(), 0);
    std::thread::sleep(Duration::from_millis(15));
    edge.tick();
    std::thread::sleep(Duration::from_millis(15));
    edge.tick();
    assert_eq!(ticks(), 2, "on_tick ran once per elapsed period");
    match run(&edge, &[]).unwrap() {
        Verdict::Reply(r) => assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"/sse/stream"[..]),
            "request.path via property and queue"
        ),
        other => panic!("expected the echo reply, got {other:?}"),
    }
}
