use serde_json::json;
use sse_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_slow_consumer_is_reset_and_closed_while_others_keep_receiving() {
    let mut cfg = config(false);
    cfg.hub.queue_capacity = 8;
    let host = TestHost::start_with(cfg).await;
    // The slow client: a raw socket that asks for a stream and then reads nothing.
    let mut slow = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let request = format!(
        "GET /sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\r\n",
        token("acme", "VIEWER")
    );
    slow.write_all(request.as_bytes()).await.unwrap();
    host.wait_for_stats("the slow stream to open", |s| s["totalConnections"] == 1)
        .await;
    let mut fast = host.stream("acme", &["dashboard-updates"]).await;
    fast.next_event().await;
    // Large events in lockstep with the fast reader: it never has more than one pending,
    // while the slow one's socket buffers fill and then its queue overflows.
    let payload = "x".repeat(60_000);
    let mut dropped = false;
    for i in 0..400 {
        let raw = serde_json::value::to_raw_value(&json!({"i": i, "pad": payload})).unwrap();
        let id = host
            .broker
            .publish("acme", "dashboard-updates", "bulk", raw)
            .await
            .unwrap();
        assert_eq!(
            fast.next_event().await.id,
            Some(id),
            "the fast subscriber gets every event"
        );
        if host.broker.stats().hub.counters.slow_consumer_drops > 0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the slow subscriber was never dropped");
    // Once the slow client reads, it finds a reset at the end of its stream, then EOF.
    let mut tail = Vec::new();
    let read_all = async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = slow.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(4096);
            tail.drain(..keep);
            if tail.windows(5).any(|w| w == b"\r\n0\r\n") {
                break; // end of the chunked body
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the slow stream ends");
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.contains("event: reset") && tail.contains("slow_consumer"),
        "tail: {tail}"
    );
    host.wait_for_stats("the slow consumer's slot to return", |s| s["totalConnections"] == 1)
        .await;
    let id = host.publish("acme", "dashboard-updates", "after", json!(1)).await;
    assert_eq!(fast.next_event().await.id, Some(id));
}
