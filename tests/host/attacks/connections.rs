//! Connections that never finish their first request, or bend HTTP/1.1: slow, silent
//! or half-sent heads, absolute-form targets, smuggled requests.

use serde_json::json;
use sse_tests::*;

/// Reads until the host closes the connection; fails the test if it has not within the
/// patience (far above the 1 s head timeout these hosts use, far below their 30 s default).
async fn closed_by_host(mut sock: tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a 408 or 400 first is fine
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open");
}

async fn connect_and_send(host: &TestHost, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    if !bytes.is_empty() {
        sock.write_all(bytes).await.unwrap();
    }
    sock
}

fn head_limits(timeout_secs: u64, max_handshaking: usize, per_peer: usize) -> sse_host::HostConfig {
    let mut file = sse_host::FileConfig {
        listen: "127.0.0.1:0".into(),
        ..sse_host::FileConfig::default()
    };
    file.http.head_timeout_secs = timeout_secs;
    file.http.max_handshaking = max_handshaking;
    file.http.max_handshaking_per_peer = per_peer;
    file.build(Some(policy_json(false).to_string())).unwrap()
}

#[tokio::test]
async fn silent_trickling_and_half_sent_heads_are_dropped_at_one_deadline() {
    let host = TestHost::start_with(head_limits(1, 4096, 256)).await;
    let attempts: [(&str, &[u8]); 7] = [
        ("silent", b""),
        ("one byte of the h2 preface", b"P"),
        ("most of the h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n"),
        (
            "the h2 preface, then no request (idle h2c)",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
        ("part of a stream request line", b"GET /sse/str"),
        (
            "a stream head without its end",
            b"GET /sse/stream?companyId=acme HTTP/1.1\r\nhost: x\r\n",
        ),
        (
            "another head without its end",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ",
        ),
    ];
    let mut socks = Vec::new();
    for (what, bytes) in attempts {
        socks.push((what, connect_and_send(&host, bytes).await));
    }
    for (what, sock) in socks {
        closed_by_host(sock, what).await;
    }
    let res = host.client.get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the host serves on");
}

/// Connects to `host` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(host: &TestHost, from: [u8; 4], bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut sock = socket.connect(host.addr).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    sock
}

#[tokio::test]
async fn one_peer_cannot_take_every_handshake_place() {
    let host = TestHost::start_with(head_limits(30, 8, 4)).await;
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(connect_from(&host, [127, 0, 0, 2], b"P").await);
    }
    closed_by_host(
        connect_from(&host, [127, 0, 0, 2], b"").await,
        "a fifth from the same peer",
    )
    .await;
    // Another address still gets in and is served.
    let mut other = connect_from(&host, [127, 0, 0, 3], b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut reply = [0u8; 12];
    tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read_exact(&mut other, &mut reply))
        .await
        .expect("a reply")
        .unwrap();
    assert_eq!(&reply, b"HTTP/1.1 200");
}

#[tokio::test]
async fn connections_without_a_request_are_capped() {
    let host = TestHost::start_with(head_limits(30, 4, 4)).await;
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(connect_and_send(&host, b"P").await);
    }
    // The fifth is closed at once, long before the 30 s head timeout.
    closed_by_host(connect_and_send(&host, b"").await, "the fifth handshake").await;
    drop(holders); // their permits come back as they close
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match host.client.get(host.url("/healthz")).send().await {
            Ok(res) if res.status() == 200 => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "served again once they left"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn absolute_form_and_bodies_on_the_stream_path_change_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = TestHost::start().await;
    let read_all = |mut sock: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    // Absolute form, no token: refused like the origin form.
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    sock.write_all(b"GET http://evil.test/sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\nhost: evil.test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_all(sock).await;
    assert!(reply.starts_with("HTTP/1.1 401 "), "{reply}");
    // A stream request with a body and a publish smuggled behind it. The stream's token
    // lives 2 s, so the server ends the response itself; were the connection kept open
    // after it, the next bytes would be read as a request. They never are.
    let publish = r#"{"companyId":"acme","channel":"dashboard-updates","type":"x","data":1}"#;
    let smuggled = format!(
        "GET /sse/stream?companyId=acme&channel=dashboard-updates HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 0\r\n\r\n\
         POST /sse/publish HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{publish}",
        token_with(json!({"sub": "s", "company_id": "acme", "role": "VIEWER"}), 2),
        token("acme", "PUBLISHER"),
        publish.len()
    );
    let mut sock = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    sock.write_all(smuggled.as_bytes()).await.unwrap();
    let all = read_all(sock).await;
    assert!(
        all.starts_with("HTTP/1.1 200 ") && all.contains("event: closing"),
        "{all}"
    );
    assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "one response only: {all}");
    assert_eq!(
        host.stats().await["counters"]["published"],
        0,
        "the smuggled publish never ran"
    );
}

/// An h2c (prior knowledge) client connection to `host`: its request sender, and a task
/// that ends when the connection does.
async fn h2c(host: &TestHost) -> (h2::client::SendRequest<bytes::Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    (
        send,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

fn h2_get(path: &str, token: &str) -> http::Request<()> {
    http::Request::get(format!("http://127.0.0.1{path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
}

#[tokio::test]
async fn h2_connections_are_bounded_in_streams_and_closed_when_idle() {
    let mut file = sse_host::FileConfig {
        listen: "127.0.0.1:0".into(),
        ..sse_host::FileConfig::default()
    };
    file.http.h2_idle_timeout_secs = 1;
    file.http.h2_max_concurrent_streams = 7;
    file.stream.heartbeat_secs = 1;
    let host = TestHost::start_with(file.build(Some(policy_json(false).to_string())).unwrap()).await;
    let viewer = token("acme", "VIEWER");

    // A connection with an open stream outlives the idle timeout: three heartbeats, 1 s
    // apart, arrive on it.
    let (send, conn) = h2c(&host).await;
    let mut send = send.ready().await.unwrap();
    let (res, _) = send
        .send_request(
            h2_get("/sse/stream?companyId=acme&channel=dashboard-updates", &viewer),
            true,
        )
        .unwrap();
    let res = tokio::time::timeout(PATIENCE, res).await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        send.current_max_send_streams(),
        7,
        "the host's SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    let mut body = res.into_body();
    let mut seen = String::new();
    while seen.matches(": heartbeat").count() < 3 {
        let chunk = tokio::time::timeout(PATIENCE, body.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!conn.is_finished(), "a connection with a live stream was closed");

    // Once its last stream ends, the connection is idle and the host closes it.
    drop(body);
    tokio::time::timeout(PATIENCE, conn)
        .await
        .expect("idle h2 connection still open")
        .unwrap();

    // A connection that only made a short request is closed too.
    let (send, conn) = h2c(&host).await;
    let mut send = send.ready().await.unwrap();
    let (res, _) = send.send_request(h2_get("/healthz", &viewer), true).unwrap();
    assert_eq!(
        tokio::time::timeout(PATIENCE, res).await.unwrap().unwrap().status(),
        200
    );
    tokio::time::timeout(PATIENCE, conn)
        .await
        .expect("idle h2 connection still open")
        .unwrap();
}
