//! The HTTP/1.x stream fast path on raw sockets: framing, HTTP/1.0, refusals, and the
//! client leaving.

use sse_tests::{token, HyperOnlyHost, TestHost, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(host: &TestHost, request: &str) -> TcpStream {
    let mut sock = TcpStream::connect(host.addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    sock
}

/// Reads until `needle` appears (or the connection ends); returns everything read.
async fn read_until(sock: &mut TcpStream, needle: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&out).contains(needle) {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("response within the patience");
    String::from_utf8_lossy(&out).into_owned()
}

fn stream_request(version: &str, extra: &str) -> String {
    format!(
        "GET /sse/stream?companyId=acme&channel=dashboard-updates {version}\r\nhost: t\r\nauthorization: Bearer {}\r\n{extra}\r\n",
        token("acme", "VIEWER")
    )
}

#[tokio::test]
async fn an_http11_stream_is_chunked_and_carries_events() {
    let host = TestHost::start().await;
    let mut sock = send(&host, &stream_request("HTTP/1.1", "")).await;
    let head = read_until(&mut sock, "event: connected").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let id = host
        .publish("acme", "dashboard-updates", "update", serde_json::json!({"x": 1}))
        .await;
    let more = read_until(&mut sock, "\"x\":1").await;
    assert!(more.contains(&format!("id: {id}\n")), "{more}");
    // A chunk is `<hex length>\r\n<frame>\r\n`.
    let frame = format!("id: {id}\nevent: update\ndata: {{\"x\":1}}\n\n");
    assert!(more.contains(&format!("{:x}\r\n{frame}\r\n", frame.len())), "{more:?}");
}

#[tokio::test]
async fn an_http10_stream_is_delimited_by_the_close() {
    let host = TestHost::start().await;
    let mut sock = send(&host, &stream_request("HTTP/1.0", "")).await;
    let head = read_until(&mut sock, "event: connected").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(
        head.contains("\r\n\r\nretry: "),
        "the body follows the head unframed: {head:?}"
    );
}

#[tokio::test]
async fn malformed_and_oversized_heads_are_refused() {
    let host = TestHost::start().await;
    let mut sock = send(&host, "GET /sse/stream?x HTTP/1.1\r\nbad header line\r\n\r\n").await;
    assert!(read_until(&mut sock, "\r\n\r\n").await.starts_with("HTTP/1.1 400 "));
    let huge = format!("x-pad: {}\r\n", "a".repeat(20 * 1024));
    let mut sock = send(&host, &stream_request("HTTP/1.1", &huge)).await;
    assert!(read_until(&mut sock, "\r\n\r\n").await.starts_with("HTTP/1.1 431 "));
    let mut sock = send(
        &host,
        "GET /sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\n\r\n",
    )
    .await;
    let refused = read_until(&mut sock, "}").await;
    assert!(
        refused.starts_with("HTTP/1.1 401 "),
        "no token: the same routes answer: {refused}"
    );
    assert!(refused.contains("content-length: "), "{refused}");
}

#[tokio::test]
async fn a_client_that_leaves_gives_its_slot_back_without_any_write() {
    let host = TestHost::start().await;
    let mut sock = send(&host, &stream_request("HTTP/1.1", "")).await;
    read_until(&mut sock, "event: connected").await;
    host.wait_for_stats("the stream to count", |s| s["totalConnections"] == 1)
        .await;
    drop(sock); // no event, no heartbeat: only the socket closing can tell the host
    host.wait_for_stats("the slot to come back", |s| s["totalConnections"] == 0)
        .await;
}

/// The response head as (name, value) lines, sorted, without the ones that differ by
/// nature: `date` (the time) and `connection` (only the fast path closes after a stream).
fn comparable_head(head: &str) -> (String, Vec<String>) {
    let head = &head[..head.find("\r\n\r\n").expect("a complete head")];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let mut fields: Vec<String> = lines
        .filter(|l| !l.starts_with("date: ") && !l.starts_with("connection: "))
        .map(str::to_owned)
        .collect();
    fields.sort();
    (status, fields)
}

#[tokio::test]
async fn both_servers_send_the_same_stream_head() {
    let (fast, hyper) = (TestHost::start().await, HyperOnlyHost::start().await);
    let origin = "origin: https://app.test\r\n";
    let mut a = send(&fast, &stream_request("HTTP/1.1", origin)).await;
    let mut b = send(&hyper, &stream_request("HTTP/1.1", origin)).await;
    let (head_a, head_b) = (
        read_until(&mut a, "event: connected").await,
        read_until(&mut b, "event: connected").await,
    );
    assert!(
        head_a.contains("\r\nconnection: close\r\n"),
        "the fast path served: {head_a}"
    );
    assert!(!head_b.contains("connection: close"), "hyper served: {head_b}");
    for head in [&head_a, &head_b] {
        assert!(head.contains("\r\ndate: "), "both send a date: {head}");
    }
    assert_eq!(comparable_head(&head_a), comparable_head(&head_b));
}

#[tokio::test]
async fn both_servers_refuse_an_oversized_head_alike() {
    let (fast, hyper) = (TestHost::start().await, HyperOnlyHost::start().await);
    let huge = format!("x-pad: {}\r\n", "a".repeat(20 * 1024));
    for host in [&fast, &hyper] {
        let mut sock = send(host, &stream_request("HTTP/1.1", &huge)).await;
        let reply = read_until(&mut sock, "\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
    }
}
