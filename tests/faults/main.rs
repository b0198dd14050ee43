//! Faults with real processes: a host SIGKILLed under streams, Envoy killed and started
//! again under streams. Each test bounds its waits by the patience.

mod envoy_restart;
mod host_kill;

use sse_tests::SseEvent;

/// The next event that is not `connected`.
async fn next_after_connected(s: &mut sse_tests::SseStream) -> SseEvent {
    loop {
        let e = s.next_event().await;
        if e.event != "connected" {
            return e;
        }
    }
}
