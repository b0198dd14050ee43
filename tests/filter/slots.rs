//! The per-company limit in shared data: exact across VMs, returned on every end.

use std::sync::Arc;

use sse_host::edge::{Verdict, WasmEdge};
use sse_tests::*;

use crate::abi_decisions::request;

const STREAM: &str = "/sse/stream?companyId=acme&channel=dashboard-updates";

fn open(edge: &WasmEdge, auth: &str) -> Option<sse_host::edge::Contexts> {
    let (verdict, ctx) = edge
        .on_request(request(STREAM, &[("authorization", auth)]), false, None, 1)
        .unwrap();
    match verdict {
        Verdict::Forward(_) => Some(ctx),
        Verdict::Reply(r) => {
            assert_eq!(r.status, 429, "only the limit may refuse here");
            None
        }
        Verdict::NeedsBody(_) => panic!("a stream has no body to wait for"),
    }
}

fn count(edge: &WasmEdge) -> u32 {
    let value = edge
        .shared_data(0, &sse_policy::slots::shard_key("acme"))
        .unwrap_or_default();
    sse_policy::slots::count(&value, "acme")
}

#[test]
fn the_limit_is_exact_under_concurrent_requests_on_several_vms() {
    let edge = Arc::new(filter_edge(4, |_| {}).unwrap()); // test policy: 5 per company
    let auth = format!("Bearer {}", token("acme", "VIEWER"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (edge, auth) = (edge.clone(), auth.clone());
            std::thread::spawn(move || (0..10).filter_map(|_| open(&edge, &auth)).collect::<Vec<_>>())
        })
        .collect();
    let held: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(held.len(), 5, "exactly the limit was admitted out of 40 attempts");
    assert_eq!(count(&edge), 5);
    drop(held);
    assert_eq!(count(&edge), 0, "every slot returned");
    assert_eq!(edge.live_contexts(), 0);
}

#[test]
fn thousands_of_mixed_cycles_leave_the_counter_at_zero() {
    let edge = Arc::new(filter_edge(3, |_| {}).unwrap());
    let auth = format!("Bearer {}", token("acme", "VIEWER"));
    let threads: Vec<_> = (0..3u64)
        .map(|seed| {
            let (edge, auth) = (edge.clone(), auth.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..1000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 3 {
                        0 | 1 => held.extend(open(&edge, &auth)),
                        _ if !held.is_empty() => drop(held.swap_remove((x as usize / 3) % held.len())),
                        _ => {}
                    }
                    assert!(count(&edge) <= 5, "the limit holds at every step");
                }
                held
            })
        })
        .collect();
    let held: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(held.len() <= 5);
    assert_eq!(count(&edge) as usize, held.len());
    drop(held);
    assert_eq!(count(&edge), 0);
    assert_eq!(edge.live_contexts(), 0);
}
