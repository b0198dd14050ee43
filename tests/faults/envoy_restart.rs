//! Envoy killed and started again under streams (the real Envoy, the shipped config):
//! the host frees the dead proxy's streams, clients come back through the new Envoy with
//! exact resumes, and both the host's and the new filter's counts equal the live streams.

use std::time::Duration;

use serde_json::json;
use sse_host::EdgeMode;
use sse_tests::envoy::Envoy;
use sse_tests::{config, policy_json, token, SseStream, TestHost, PATIENCE};

use crate::next_after_connected;

const COMPANIES: usize = 10;
const PER_COMPANY: usize = 5;

fn company(i: usize) -> String {
    format!("co-{i}")
}

async fn open(host: &TestHost, envoy: &Envoy, c: usize, last: Option<&str>) -> SseStream {
    let url = envoy.url(&format!(
        "/sse/stream?companyId={}&channel=dashboard-updates",
        company(c)
    ));
    let mut req = host.client.get(url).bearer_auth(token(&company(c), "VIEWER"));
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", envoy.log());
    SseStream::new(res)
}

async fn publish(host: &TestHost, c: usize, n: u64) -> String {
    let raw = serde_json::value::to_raw_value(&json!({ "n": n })).unwrap();
    host.broker
        .publish(&company(c), "dashboard-updates", "update", raw)
        .await
        .unwrap()
}

/// Waits until `probe` is true; fails after the patience with `what`.
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !probe().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The filter's `active_streams` gauge in Envoy (summed over its workers).
async fn filter_streams(envoy: &Envoy) -> Option<u64> {
    let url = format!("http://{}/stats?filter=sse_filter_active_streams", envoy.admin);
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(name, _)| name.ends_with("sse_filter_active_streams"))
        .map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn clients_resume_exactly_through_a_restarted_envoy() {
    let mut cfg = config(false);
    cfg.edge = EdgeMode::Envoy;
    let host = TestHost::start_with(cfg).await;
    let envoy = Envoy::start(host.addr, &policy_json(false)).await;
    let mut last = Vec::new();
    let mut streams = Vec::new();
    for c in 0..COMPANIES {
        for _ in 0..PER_COMPANY {
            streams.push((c, open(&host, &envoy, c, None).await));
        }
        last.push(publish(&host, c, 0).await);
    }
    for (c, s) in &mut streams {
        assert_eq!(next_after_connected(s).await.id.as_deref(), Some(last[*c].as_str()));
    }
    let total = (COMPANIES * PER_COMPANY) as u64;
    eventually("the filter never counted the streams", async || {
        filter_streams(&envoy).await == Some(total)
    })
    .await;

    drop(envoy); // SIGKILL
    eventually("the host kept the dead proxy's streams", async || {
        host.broker.hub_stats().total_connections == 0
    })
    .await;
    // Published while no proxy runs: what the clients must get on their return.
    let mut missed: Vec<Vec<String>> = vec![Vec::new(); COMPANIES];
    for (c, ids) in missed.iter_mut().enumerate() {
        for n in 1..=3 {
            ids.push(publish(&host, c, n).await);
        }
    }

    let envoy = Envoy::start(host.addr, &policy_json(false)).await;
    let mut back = Vec::new();
    for (c, _) in &streams {
        back.push((*c, open(&host, &envoy, *c, Some(&last[*c])).await));
    }
    drop(streams);
    for (c, s) in &mut back {
        for id in &missed[*c] {
            let e = next_after_connected(s).await;
            assert_eq!(e.id.as_ref(), Some(id), "exactly the missed events, in order");
        }
    }
    eventually("the host's count is not the live streams", async || {
        host.broker.hub_stats().total_connections == total
    })
    .await;
    eventually("the new filter's count is not the live streams", async || {
        filter_streams(&envoy).await == Some(total)
    })
    .await;
    let live = publish(&host, 0, 4).await;
    for (c, s) in back.iter_mut().filter(|(c, _)| *c == 0) {
        assert_eq!(
            next_after_connected(s).await.id.as_deref(),
            Some(live.as_str()),
            "{c}: live again"
        );
    }
}
