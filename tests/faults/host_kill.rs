//! A host with the memory backend is SIGKILLed under 1,000 streams: its history dies with
//! it, so every client that resumes on the new process is told so (`reset`, reason
//! `restarted`) rather than silently missing what was published before the crash.

use serde_json::{json, Value};
use sse_tests::node::Node;
use sse_tests::{token, SseStream};

use crate::next_after_connected;

const COMPANIES: usize = 200;
/// The test policy's per-company limit.
const PER_COMPANY: usize = 5;

fn company(i: usize) -> String {
    format!("co-{i}")
}

/// Publishes `n` events to each company in one batch each; returns the last ID of each.
async fn publish_all(node: &Node, tag: &str, n: usize) -> Vec<String> {
    let mut last = Vec::new();
    for c in 0..COMPANIES {
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"companyId": company(c), "channel": "dashboard-updates", "type": tag, "data": i}))
            .collect();
        let res = node
            .client
            .post(node.url("/sse/publish"))
            .bearer_auth(token(&company(c), "PUBLISHER"))
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        last.push(
            body["ids"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    last
}

#[tokio::test]
async fn a_killed_host_resets_every_resuming_client_never_a_silent_gap() {
    let mut a = Node::start_memory("").await;
    let mut streams: Vec<(usize, SseStream)> = Vec::new();
    for c in 0..COMPANIES {
        for _ in 0..PER_COMPANY {
            let s = a
                .stream_as(&token(&company(c), "VIEWER"), &company(c), &["dashboard-updates"], None)
                .await;
            streams.push((c, s));
        }
    }
    let before = publish_all(&a, "before", 2).await;
    let mut seen = Vec::new();
    for (c, s) in &mut streams {
        let mut last = None;
        while last.as_deref() != Some(before[*c].as_str()) {
            last = next_after_connected(s).await.id;
        }
        seen.push((*c, last.unwrap()));
    }
    a.kill(); // SIGKILL: no drain, no closing event
    drop(streams);

    let b = Node::start_memory("").await;
    let mut resumed = Vec::new();
    for (c, last) in &seen {
        let mut s = b
            .stream_as(
                &token(&company(*c), "VIEWER"),
                &company(*c),
                &["dashboard-updates"],
                Some(last),
            )
            .await;
        let e = next_after_connected(&mut s).await;
        assert_eq!(
            e.event, "reset",
            "a resume across the crash is a reset, not a silent gap"
        );
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["reason"], "restarted");
        resumed.push((*c, s));
    }
    let after = publish_all(&b, "after", 1).await;
    for (c, s) in &mut resumed {
        let e = next_after_connected(s).await;
        assert_eq!(e.id.as_deref(), Some(after[*c].as_str()), "then live events, in order");
    }
}
