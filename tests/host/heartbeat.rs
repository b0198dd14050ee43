use std::time::Duration;

use sse_tests::*;

#[tokio::test]
async fn heartbeats_arrive_as_comments_on_an_idle_stream() {
    let mut cfg = config(false);
    cfg.stream.heartbeat = Duration::from_secs(1);
    let host = TestHost::start_with(cfg).await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    s.next_event().await;
    let mut beats = 0;
    while beats < 2 {
        match s.next_frame().await {
            Some(Frame::Comment(c)) => {
                assert_eq!(c, "heartbeat");
                beats += 1;
            }
            other => panic!("only heartbeats expected on an idle stream, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn heartbeats_can_be_named_events() {
    let mut cfg = config(false);
    cfg.stream.heartbeat = Duration::from_secs(1);
    cfg.stream.heartbeat_event = true;
    let host = TestHost::start_with(cfg).await;
    let mut s = host.stream("acme", &["dashboard-updates"]).await;
    s.next_event().await;
    let e = s.next_event().await;
    assert_eq!(
        (e.event.as_str(), e.id),
        ("heartbeat", None),
        "heartbeats never move the resume cursor"
    );
}
