//! Two nodes on one Redis: fan-out, resume on the other node, limits across nodes.

use sse_tests::token;

use crate::{open_when_free, order, publish_n, read_ids};

const BOTH: [&str; 2] = ["dashboard-updates", "evidence-updates"];

#[tokio::test]
async fn a_publish_on_either_node_reaches_subscribers_on_both_in_one_order() {
    let (_redis, a, b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let mut on_a = a.stream_as(&viewer, "acme", &BOTH, None).await;
    let mut on_b = b.stream_as(&viewer, "acme", &BOTH, None).await;
    let mut other = b.stream_as(&token("globex", "VIEWER"), "globex", &BOTH, None).await;
    for s in [&mut on_a, &mut on_b, &mut other] {
        assert_eq!(s.next_event().await.event, "connected");
    }
    // Interleave channels and publishing nodes: one company-wide order must come out.
    let mut published = Vec::new();
    for round in 0..10 {
        let node = if round % 2 == 0 { &a } else { &b };
        published.extend(publish_n(node, BOTH[round % 2], 3, "x").await);
    }
    assert!(
        published.windows(2).all(|w| order(&w[0]) < order(&w[1])),
        "IDs increase across channels"
    );
    assert_eq!(read_ids(&mut on_a, 30).await, published, "node A: all, in order");
    assert_eq!(read_ids(&mut on_b, 30).await, published, "node B: all, in order");
    let globex = b
        .publish("globex", "dashboard-updates", "update", serde_json::json!(1))
        .await;
    assert_eq!(
        read_ids(&mut other, 1).await,
        vec![globex],
        "other companies see only their own"
    );
}

#[tokio::test]
async fn a_client_resumes_on_the_other_node_with_exactly_the_missed_events() {
    let (_redis, a, b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let mut s = a.stream_as(&viewer, "acme", &BOTH, None).await;
    let seen = publish_n(&a, BOTH[0], 4, "seen").await;
    assert_eq!(read_ids(&mut s, 4).await, seen);
    drop(s);
    let mut missed = publish_n(&a, BOTH[1], 3, "missed").await;
    missed.extend(publish_n(&b, BOTH[0], 3, "missed").await);
    let mut s = b.stream_as(&viewer, "acme", &BOTH, Some(&seen[3])).await;
    assert_eq!(
        read_ids(&mut s, 6).await,
        missed,
        "replay on B: exactly the missed, in order"
    );
    let live = publish_n(&a, BOTH[1], 2, "live").await;
    assert_eq!(read_ids(&mut s, 2).await, live, "then live events, no duplicates");
    // Polling on either node uses the same IDs.
    let poll = format!(
        "/sse/poll?companyId=acme&channel={}&channel={}&since={}",
        BOTH[0], BOTH[1], seen[3]
    );
    let body = a.get_json(&poll, &viewer).await;
    let polled: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = missed.iter().chain(&live).map(String::as_str).collect();
    assert_eq!(polled, expected);
    assert_eq!(body["next"], live[1].as_str());
}

#[tokio::test]
async fn company_limits_hold_across_nodes_and_a_killed_nodes_slots_expire() {
    // The test policy allows 5 streams per company.
    let (_redis, a, mut b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let mut held = Vec::new();
    for node in [&a, &a, &a, &b, &b] {
        held.push(node.stream_as(&viewer, "acme", &BOTH[..1], None).await);
    }
    for node in [&a, &b] {
        let res = node.open_stream(&viewer, "acme", &BOTH[..1], None).await;
        assert_eq!(res.status(), 429, "the sixth stream is refused on either node");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "TOO_MANY_CONNECTIONS");
    }
    let other = a
        .open_stream(&token("globex", "VIEWER"), "globex", &BOTH[..1], None)
        .await;
    assert_eq!(other.status(), 200, "limits are per company");
    drop(other);
    b.kill(); // a crash: B's two slots stay counted until its lease (3 s) expires
    let refused = a.open_stream(&viewer, "acme", &BOTH[..1], None).await;
    assert_eq!(
        refused.status(),
        429,
        "slots of a node that just died are still counted"
    );
    drop(refused);
    let deadline = tokio::time::Instant::now() + sse_tests::PATIENCE;
    let first = open_when_free(&a, None, deadline, "B's slots never came back").await;
    let second = a.open_stream(&viewer, "acme", &BOTH[..1], None).await;
    assert_eq!(second.status(), 200, "both of B's slots came back");
    let sixth = a.open_stream(&viewer, "acme", &BOTH[..1], None).await;
    assert_eq!(sixth.status(), 429, "and the limit still holds");
    drop((first, second, held));
}

#[tokio::test]
async fn subscribers_joining_during_a_publish_storm_get_every_later_event_once_in_order() {
    let (_redis, a, b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let published = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let publisher = |node_url: String, channel: &'static str| {
        let published = published.clone();
        tokio::spawn(async move {
            let node = sse_tests::HostClient::new(&node_url);
            for i in 0..150 {
                let id = node.publish("acme", channel, "update", serde_json::json!(i)).await;
                published.lock().await.push(id);
            }
        })
    };
    let pubs = [publisher(a.base.clone(), BOTH[0]), publisher(b.base.clone(), BOTH[1])];
    // Join while events flow: live-only on both nodes, and resuming from a seen ID.
    let mut joined = Vec::new();
    for i in 0..5 {
        // (five: the test policy's per-company limit)
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let node = if i % 2 == 0 { &a } else { &b };
        let resume_from = if i % 3 == 2 {
            published.lock().await.first().cloned()
        } else {
            None
        };
        let mut s = node.stream_as(&viewer, "acme", &BOTH, resume_from.as_deref()).await;
        let connected = s.next_event().await;
        assert_eq!(connected.event, "connected");
        let after = resume_from.unwrap_or_else(|| connected.json()["lastEventId"].as_str().unwrap().to_owned());
        joined.push((s, after));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let mut all = published.lock().await.clone();
    all.sort_by_key(|id| order(id));
    for (i, (mut s, after)) in joined.into_iter().enumerate() {
        let expected: Vec<String> = all.iter().filter(|id| order(id) > order(&after)).cloned().collect();
        assert_eq!(
            read_ids(&mut s, expected.len()).await,
            expected,
            "subscriber {i} (after {after})"
        );
    }
}

#[tokio::test]
async fn long_polls_hold_connection_slots_across_nodes() {
    // The test policy allows 5 streams per company; a waiting poll counts as one.
    let (redis, a, b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let url = a.url("/sse/poll?companyId=acme&channel=dashboard-updates&wait=30");
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let (client, url, viewer) = (a.client.clone(), url.clone(), viewer.clone());
            tokio::spawn(async move { client.get(url).bearer_auth(viewer).send().await.unwrap() })
        })
        .collect();
    // Each waiter takes its slot on A, then its share of the cluster-wide count in
    // Redis (what every node's acquire script sums: the counts, not the `~node` leases).
    let counted = "local t = 0 local f = redis.call('HGETALL', KEYS[1]) \
        for i = 1, #f, 2 do if string.sub(f[i], 1, 1) ~= '~' then t = t + tonumber(f[i + 1]) end end return t";
    let deadline = tokio::time::Instant::now() + sse_tests::PATIENCE;
    while redis.command(&["EVAL", counted, "1", "sse:{acme}:conns"]).await != ":5\r\n" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's long polls never counted in Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let res = b.open_stream(&viewer, "acme", &BOTH[..1], None).await;
    assert_eq!(res.status(), 429, "B counts A's five waiting polls");
    drop(res);
    let id = b.publish("acme", "dashboard-updates", "x", serde_json::json!(1)).await;
    for w in waiting {
        let body: serde_json::Value = w.await.unwrap().json().await.unwrap();
        assert_eq!(body["events"][0]["id"], id.as_str(), "each waiter woke with the event");
    }
    // Answered polls give their slots back, here and in Redis (the release is written
    // as the waiter ends, so the last ones may take a moment): five streams fit again.
    let deadline = tokio::time::Instant::now() + sse_tests::PATIENCE;
    let mut held = Vec::new();
    for node in [&a, &a, &b, &b, &b] {
        held.push(open_when_free(node, None, deadline, "the long polls' slots never came back").await);
    }
    let sixth = b.open_stream(&viewer, "acme", &BOTH[..1], None).await;
    assert_eq!(sixth.status(), 429, "and the limit still holds");
    drop(held);
}

#[tokio::test]
async fn a_node_killed_under_a_publish_storm_leaves_its_clients_exact_resumes_on_the_other() {
    let (_redis, a, mut b) = crate::two_nodes().await;
    let viewer = token("acme", "VIEWER");
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(b.stream_as(&viewer, "acme", &BOTH[..1], None).await);
    }
    let storm = {
        let node = sse_tests::HostClient::new(&a.base);
        tokio::spawn(async move {
            let mut ids = Vec::new();
            // Within the 100-event history: a client further behind gets `reset` (too_old).
            for i in 0..90 {
                ids.push(node.publish("acme", BOTH[0], "update", serde_json::json!(i)).await);
            }
            ids
        })
    };
    // Each client has read a different amount when B dies mid-storm.
    let mut last = Vec::new();
    for (i, s) in streams.iter_mut().enumerate() {
        last.push(read_ids(s, 5 + 3 * i).await.pop().unwrap());
    }
    b.kill();
    drop(streams);
    // They come back on A; B's five slots stay counted in Redis until its lease (3 s)
    // expires, so the first attempts are refused, then each gets its place.
    let deadline = tokio::time::Instant::now() + sse_tests::PATIENCE;
    let mut resumed = Vec::new();
    for from in &last {
        let res = open_when_free(&a, Some(from), deadline, "B's slots never came back").await;
        resumed.push(sse_tests::SseStream::new(res));
    }
    let all = storm.await.unwrap();
    for (i, (s, from)) in resumed.iter_mut().zip(&last).enumerate() {
        let expected: Vec<String> = all.iter().filter(|id| order(id) > order(from)).cloned().collect();
        assert_eq!(
            read_ids(s, expected.len()).await,
            expected,
            "client {i}: exactly what it missed"
        );
    }
}

#[tokio::test]
async fn the_readers_lag_is_a_metric_the_alert_rules_can_use() {
    let (_redis, a, b) = crate::two_nodes().await;
    let mut s = b.stream_as(&token("acme", "VIEWER"), "acme", &BOTH, None).await;
    let published = publish_n(&a, BOTH[0], 1, "lag").await;
    assert_eq!(read_ids(&mut s, 1).await, published, "node B's reader delivered it");
    let metrics = b.metrics().await;
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sse_redis_reader_lag_seconds ")?.parse().ok())
        .unwrap_or_else(|| panic!("no reader lag in:\n{metrics}"));
    // A plausible age (not a measurement: this box is shared), in seconds, not ms.
    assert!((0.0..30.0).contains(&lag), "lag {lag}");
    // Every Redis series the rules and the dashboard use is one this node exports.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/monitoring");
    let mut used = std::collections::BTreeSet::new();
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for (i, _) in text.match_indices("sse_redis_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    assert!(!used.is_empty());
    for name in used {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} is used but not exported"
        );
    }
}

#[tokio::test]
async fn a_tiers_limit_holds_across_nodes() {
    let redis = sse_tests::redis::RedisServer::start().await;
    let policy = sse_tests::tiered_policy();
    let a = sse_tests::node::Node::start_with_policy(&redis.url(), &policy).await;
    let b = sse_tests::node::Node::start_with_policy(&redis.url(), &policy).await;
    let viewer = token("acme", "VIEWER");
    let mut held = Vec::new();
    for node in [&a, &b, &a] {
        let res = node.open_stream(&viewer, "acme", &BOTH, None).await;
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    // acme's tier allows 3 across both nodes; the default (2) would have refused the third.
    assert_eq!(b.streams_admitted("acme").await, (0, 429));
    assert_eq!(
        a.streams_admitted("globex").await,
        (2, 429),
        "everyone else: the default"
    );
}
