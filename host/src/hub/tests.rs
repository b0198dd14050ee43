//! The hub core without sockets: resume, lifetimes, slow consumers and heartbeats, on
//! tokio's paused clock (time moves only when a test advances it).

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::to_raw_value;

use super::subscriber::Next;
use super::{Hub, HubSettings, Subscription};

fn hub(tweak: impl FnOnce(&mut HubSettings)) -> Hub {
    let mut settings = HubSettings::default();
    tweak(&mut settings);
    Hub::new(settings)
}

const CH: &str = "dashboard-updates";

fn channels() -> Vec<String> {
    vec![CH.to_owned()]
}

fn publish(hub: &Hub, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let data = to_raw_value(&i).unwrap();
            hub.publish_batch("acme", &[(CH, "update", data)], None)
                .unwrap()
                .ids
                .remove(0)
        })
        .collect()
}

fn subscribe(hub: &Hub, resume: Option<&str>, expires_at: Option<u64>) -> Subscription {
    hub.subscribe("acme", &channels(), resume, expires_at, Default::default())
        .unwrap()
}

/// Everything the subscriber has ready now, as text; `ended` once it is over.
fn drain(sub: &Subscription) -> (String, bool) {
    let mut out = String::new();
    loop {
        match sub.subscriber.poll_next(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Next::Data(b, _)) => out.push_str(std::str::from_utf8(&b).unwrap()),
            Poll::Ready(Next::Last(b)) => out.push_str(std::str::from_utf8(&b).unwrap()),
            Poll::Ready(Next::End) => return (out, true),
            Poll::Pending => return (out, false),
        }
    }
}

fn initial(sub: &Subscription) -> String {
    sub.initial.iter().map(|f| std::str::from_utf8(f).unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn resume_replays_exactly_what_was_missed_then_goes_live() {
    let hub = hub(|_| {});
    let ids = publish(&hub, 3);
    let sub = subscribe(&hub, Some(&ids[0]), None);
    let replay = initial(&sub);
    assert!(!replay.contains(&format!("id: {}\n", ids[0])), "{replay}");
    assert!(replay.contains(&format!("id: {}\n", ids[1])), "{replay}");
    assert!(replay.contains(&format!("id: {}\n", ids[2])), "{replay}");
    assert_eq!(sub.replayed, 2);
    let live = publish(&hub, 1);
    assert!(drain(&sub).0.contains(&format!("id: {}\n", live[0])));
}

#[tokio::test(start_paused = true)]
async fn unusable_cursors_get_a_reset_with_the_reason() {
    let hub = hub(|s| s.history_size = 2);
    let ids = publish(&hub, 5);
    let reason = |resume: &str| initial(&subscribe(&hub, Some(resume), None));
    assert!(reason(&ids[0]).contains("\"reason\":\"too_old\""));
    assert!(reason("0badcafe-3").contains("\"reason\":\"restarted\""));
    assert!(reason("not-an-id").contains("\"reason\":\"unknown_id\""));
    let future = format!("{}-999", hub.epoch());
    assert!(reason(&future).contains("\"reason\":\"unknown_id\""));
    assert_eq!(
        initial(&subscribe(&hub, Some(&ids[3]), None))
            .matches("event: update")
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_at_its_max_lifetime_with_the_expiry_frame() {
    let hub = hub(|s| s.max_lifetime = Duration::from_secs(60));
    let sub = subscribe(&hub, None, None);
    let expiry = Bytes::from_static(b"event: closing\ndata: {}\n\n");
    tokio::time::advance(Duration::from_secs(59)).await;
    hub.sweep(&expiry);
    assert_eq!(drain(&sub), (String::new(), false), "still open before its lifetime");
    tokio::time::advance(Duration::from_secs(1)).await;
    hub.sweep(&expiry);
    assert_eq!(drain(&sub), ("event: closing\ndata: {}\n\n".to_owned(), true));
}

#[tokio::test(start_paused = true)]
async fn a_token_that_expires_first_ends_the_stream_first() {
    let hub = hub(|s| s.max_lifetime = Duration::from_secs(3600));
    let expires_at = crate::clock::unix_secs() + 10;
    let sub = subscribe(&hub, None, Some(expires_at));
    let expiry = Bytes::from_static(b"x");
    tokio::time::advance(Duration::from_secs(11)).await;
    hub.sweep(&expiry);
    assert!(drain(&sub).1, "ended at the token's expiry, not after an hour");
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_is_reset_and_ended_while_others_keep_up() {
    let hub = hub(|s| s.queue_capacity = 4);
    let slow = subscribe(&hub, None, None);
    let fast = subscribe(&hub, None, None);
    for _ in 0..10 {
        let id = publish(&hub, 1).remove(0);
        assert!(
            drain(&fast).0.contains(&format!("id: {id}\n")),
            "the reader that keeps up gets {id}"
        );
    }
    let (out, ended) = drain(&slow);
    assert!(out.contains("\"reason\":\"slow_consumer\""), "{out}");
    assert!(ended);
    let counters = hub.stats().counters;
    assert_eq!((counters.slow_consumer_drops, counters.resets), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_reach_every_open_stream_and_slots_return_on_drop() {
    let hub = hub(|_| {});
    let subs = [subscribe(&hub, None, None), subscribe(&hub, None, None)];
    hub.broadcast(&Bytes::from_static(b": heartbeat\n\n"));
    for sub in &subs {
        assert_eq!(drain(sub), (": heartbeat\n\n".to_owned(), false));
    }
    assert_eq!(hub.stats().total_connections, 2);
    drop(subs);
    assert_eq!(hub.stats().total_connections, 0);
    assert!(hub.stats().connections_by_company.is_empty());
}
