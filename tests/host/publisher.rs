//! The Rust publisher (`host/publisher`, crate `sse-publisher`) against a real host: the
//! seed's helpers land on the right channels, a publish whose reply is lost is retried
//! and stored once, refusals are final, an unreachable host is given up on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sse_publisher::{Event, PublishError, Publisher, Retry};
use sse_tests::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

fn quick() -> Retry {
    Retry {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
    }
}

/// A relay to `target` that loses the reply of the first connection: it forwards the
/// request, waits until the host starts answering (the publish is stored by then), and
/// closes the client's socket without passing the answer on. Later connections are
/// relayed whole. Counts connections.
async fn losing_first_reply(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let upstream = TcpStream::connect(target).await.unwrap();
                if n > 0 {
                    let (mut c, mut u) = (client, upstream);
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                    return;
                }
                let (mut client_read, client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut up_write).await });
                let mut first = [0u8; 1];
                let _ = up_read.read(&mut first).await; // the host is answering: stored
                drop(client_write); // the reply is lost on the way
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_publish_whose_reply_is_lost_is_retried_and_stored_once() {
    let host = TestHost::start().await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    let (proxy, connections) = losing_first_reply(host.addr).await;
    let publisher = Publisher::new(&format!("http://{proxy}"), token("acme", "PUBLISHER"))
        .unwrap()
        .retry(quick())
        .unwrap();
    let id = publisher
        .broadcast_dashboard_update("acme", json!({"widgets": ["sroi"]}))
        .await
        .expect("the retry succeeds");
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the first reply was lost, so it retried"
    );
    assert_eq!(host.stats().await["counters"]["published"], 1, "stored once");
    let e = loop {
        let e = s.next_event().await;
        if e.event != "connected" {
            break e;
        }
    };
    assert_eq!(
        (e.id.as_deref(), e.event.as_str()),
        (Some(id.as_str()), "dashboard-update")
    );
}

#[tokio::test]
async fn the_seed_helpers_and_batches_reach_their_channels_in_order() {
    let host = TestHost::start().await;
    let channels = ["dashboard-updates", "evidence-updates", "report-updates"];
    let mut s = host.stream("acme", &channels).await;
    let publisher = Publisher::new(&host.base, token("acme", "PUBLISHER")).unwrap();
    let mut sent = vec![
        publisher
            .broadcast_dashboard_update("acme", json!({"d": 1}))
            .await
            .unwrap(),
        publisher
            .broadcast_evidence_update("acme", json!({"e": 1}))
            .await
            .unwrap(),
        publisher
            .broadcast_report_update("acme", json!({"r": 1}))
            .await
            .unwrap(),
    ];
    let batch = [
        Event::new("report-updates", "report-ready", json!({"report": 7})),
        Event::new("dashboard-updates", "dashboard-update", json!({"d": 2})),
    ];
    let ids = publisher.publish_batch("acme", &batch).await.unwrap();
    assert_eq!(ids.len(), 2);
    sent.extend(ids);
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let e = s.next_event().await;
        if e.event != "connected" {
            got.push((e.id.unwrap(), e.event));
        }
    }
    let types: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "dashboard-update",
            "evidence-update",
            "report-update",
            "report-ready",
            "dashboard-update"
        ]
    );
    assert_eq!(got.into_iter().map(|(id, _)| id).collect::<Vec<_>>(), sent);
}

/// Requests the host refused so far (from its own metrics: every attempt counts, whatever
/// connection it came on).
async fn refused(host: &TestHost) -> f64 {
    host.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("sse_denied_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn refusals_are_final_and_carry_the_hosts_code() {
    let host = TestHost::start().await;
    let viewer = Publisher::new(&host.base, token("acme", "VIEWER"))
        .unwrap()
        .retry(quick())
        .unwrap();
    let before = refused(&host).await;
    match viewer.broadcast_dashboard_update("acme", json!(1)).await {
        Err(PublishError::Refused { status: 403, code, .. }) => assert_eq!(code, "FORBIDDEN"),
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
    assert_eq!(refused(&host).await - before, 1.0, "one attempt, no retry");
    // A key reused for other events is refused the same way.
    let publisher = Publisher::new(&host.base, token("acme", "PUBLISHER")).unwrap();
    let one = [Event::new("dashboard-updates", "x", json!(1))];
    let other = [Event::new("dashboard-updates", "x", json!(2))];
    publisher.publish_batch_with_key("acme", &one, "job-9").await.unwrap();
    match publisher.publish_batch_with_key("acme", &other, "job-9").await {
        Err(PublishError::Refused { status: 422, code, .. }) => assert_eq!(code, "IDEMPOTENCY_KEY_REUSED"),
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(matches!(
        publisher.publish_batch_with_key("acme", &one, "has space").await,
        Err(PublishError::Config(_))
    ));
}

#[tokio::test]
async fn an_unreachable_host_is_given_up_on_after_the_attempts() {
    let port = free_port(); // nothing listens there
    let publisher = Publisher::new(&format!("http://127.0.0.1:{port}"), "token")
        .unwrap()
        .retry(quick())
        .unwrap();
    match publisher.broadcast_dashboard_update("acme", json!(1)).await {
        Err(PublishError::GaveUp { attempts: 3, .. }) => {}
        other => panic!("expected GaveUp after 3 attempts, got {other:?}"),
    }
    assert!(matches!(
        Publisher::new("sse.example.com", "t"),
        Err(PublishError::Config(_))
    ));
}
