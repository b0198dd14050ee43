//! The backend on a real Redis Cluster (3 masters, 3 replicas): two hosts, companies on
//! different masters, fan-out, resume and limits across hosts.

use serde_json::json;
use sse_tests::node::Node;
use sse_tests::redis::RedisCluster;
use sse_tests::*;

use super::read_ids;

/// Two companies whose keys live on different masters.
async fn companies_on_two_masters(cluster: &RedisCluster) -> [String; 2] {
    let mut first: Option<(String, usize)> = None;
    for i in 0..100 {
        let company = format!("tenant-{i}");
        let master = cluster.master_of(&company).await;
        match &first {
            None => first = Some((company, master)),
            Some((c, m)) if *m != master => return [c.clone(), company],
            Some(_) => {}
        }
    }
    panic!("no two companies on different masters");
}

/// Subscribers of the announcement channel over every node (each host subscribes on a
/// seed of its choosing).
async fn subscribers(cluster: &RedisCluster) -> u32 {
    let mut n = 0;
    for node in &cluster.nodes {
        let reply = node.command(&["PUBSUB", "NUMSUB", "sse:notify"]).await;
        n += reply
            .trim_end()
            .rsplit(':')
            .next()
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(0);
    }
    n
}

async fn on_cluster(cluster: &RedisCluster) -> Node {
    // `url` is not used when seeds are given. The safety tick is a minute: within the
    // test's patience, events arrive only through the announcements.
    let extra = format!("{}\nblock_ms = 60000", cluster.seeds_toml());
    Node::start_with_redis("", &extra).await
}

#[tokio::test]
async fn two_hosts_fan_out_resume_and_limit_companies_on_different_masters() {
    let cluster = RedisCluster::start().await;
    let a = on_cluster(&cluster).await;
    let b = on_cluster(&cluster).await;
    // Both readers wait on the announcements (plain pub/sub, subscribed on a seed).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while subscribers(&cluster).await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "the readers never subscribed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut held = Vec::new();
    for company in companies_on_two_masters(&cluster).await {
        let viewer = token(&company, "VIEWER");
        let mut live = b.stream_as(&viewer, &company, &["dashboard-updates"], None).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                a.publish(&company, "dashboard-updates", "update", json!({"n": n}))
                    .await,
            );
        }
        assert_eq!(
            read_ids(&mut live, 3).await,
            ids,
            "{company}: published on A, live on B"
        );
        for n in 3..5 {
            ids.push(
                b.publish(&company, "dashboard-updates", "update", json!({"n": n}))
                    .await,
            );
        }
        let mut resumed = a
            .stream_as(&viewer, &company, &["dashboard-updates"], Some(&ids[0]))
            .await;
        assert_eq!(read_ids(&mut resumed, 4).await, ids[1..], "{company}: resumed on A");
        // The test policy allows 5 streams per company, counted across both hosts.
        held.extend([live, resumed]);
        for node in [&a, &b, &a] {
            held.push(node.stream_as(&viewer, &company, &["dashboard-updates"], None).await);
        }
        for node in [&a, &b] {
            let res = node.open_stream(&viewer, &company, &["dashboard-updates"], None).await;
            assert_eq!(res.status(), 429, "{company}: the sixth stream, on either host");
        }
    }
    // The admin plane across hosts works on a cluster too.
    let listing = a.get_json("/sse/admin/connections", &token("ops", "SUPER_ADMIN")).await;
    let hosts = listing["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{listing}");
    assert!(hosts.iter().all(|h| h["answered"] == true), "{listing}");
    assert_eq!(listing["totalConnections"], 10);
}

/// Waits until one of the replicas was promoted.
async fn promoted(cluster: &RedisCluster) {
    let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
    loop {
        for replica in &cluster.nodes[3..] {
            if replica.command(&["INFO", "replication"]).await.contains("role:master") {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no replica was promoted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_master_killed_mid_publish_loses_no_acknowledged_event() {
    let mut cluster = RedisCluster::start().await;
    let seeds = cluster.seeds_toml();
    let a = Node::start_with_redis(
        "",
        &format!("{seeds}\nmin_replicas_ack = 1\nmin_replicas_timeout_ms = 1000"),
    )
    .await;
    let [company, _] = companies_on_two_masters(&cluster).await;
    let master = cluster.master_of(&company).await;
    let publisher = token(&company, "PUBLISHER");
    // A client stays connected through the failover.
    let mut live = a
        .stream_as(&token(&company, "VIEWER"), &company, &["dashboard-updates"], None)
        .await;
    assert_eq!(live.next_event().await.event, "connected");
    let body =
        |n: u32| json!({"companyId": company, "channel": "dashboard-updates", "type": "update", "data": {"n": n}});
    // Publish 30 events one by one, each retried with its key until acknowledged; kill
    // the company's master after the 10th. The cluster promotes its replica; the old
    // master comes back as the new one's replica (until then no publish can be
    // acknowledged: nothing would hold a copy).
    let mut acked = Vec::new();
    let deadline = tokio::time::Instant::now() + 6 * PATIENCE;
    for n in 0..30 {
        if n == 10 {
            cluster.nodes[master].kill();
            promoted(&cluster).await;
            cluster.nodes[master].restart().await;
        }
        acked.push(crate::publish_until_acked(&a, &publisher, &format!("k{n}"), &body(n), deadline).await);
    }
    // The connected client: events in order, none twice, every acknowledged one after
    // its last `reset` (a reset is allowed: the new master may be behind what it saw).
    let mut live = crate::Watcher {
        node: &a,
        company: &company,
        stream: live,
    };
    crate::no_gap_without_reset(&mut live, &acked).await;
    // A client that saw the first event resumes on a host started after the failover:
    // every acknowledged event is there, once each, in order.
    let b = on_cluster(&cluster).await;
    let viewer = token(&company, "VIEWER");
    let mut resumed = b
        .stream_as(&viewer, &company, &["dashboard-updates"], Some(&acked[0]))
        .await;
    assert_eq!(read_ids(&mut resumed, acked.len() - 1).await, acked[1..]);
}

#[tokio::test]
async fn a_slot_migrated_under_load_loses_and_duplicates_nothing() {
    let cluster = RedisCluster::start().await;
    let a = on_cluster(&cluster).await;
    let b = on_cluster(&cluster).await;
    let [company, elsewhere] = companies_on_two_masters(&cluster).await;
    let (from, to) = (cluster.master_of(&company).await, cluster.master_of(&elsewhere).await);
    let viewer = token(&company, "VIEWER");
    let mut live = b.stream_as(&viewer, &company, &["dashboard-updates"], None).await;
    let publisher = token(&company, "PUBLISHER");
    let body =
        |n: u32| json!({"companyId": company, "channel": "dashboard-updates", "type": "update", "data": {"n": n}});
    let slot = cluster.slot_of(&company).await;
    let published = std::sync::atomic::AtomicUsize::new(0);
    // Publishes one by one, each retried with its key until acknowledged (a command
    // whose keys are split between the two masters mid-migration is refused)...
    let publishing = async {
        let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
        let mut acked = Vec::new();
        for n in 0..40 {
            let key = format!("k{n}");
            let body = body(n);
            loop {
                let (status, reply, _) = a.publish_keyed(&publisher, &[&key], &body).await;
                if status == 200 {
                    acked.push(reply["id"].as_str().unwrap().to_owned());
                    break;
                }
                assert_eq!(status, 503, "{reply}");
                assert!(tokio::time::Instant::now() < deadline, "{reply}");
            }
            published.store(acked.len(), std::sync::atomic::Ordering::Relaxed);
        }
        acked
    };
    // ...while the company's slot moves to the other master.
    let migrating = async {
        while published.load(std::sync::atomic::Ordering::Relaxed) < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        cluster.migrate_slot(&slot, from, to).await;
    };
    let (acked, ()) = tokio::join!(publishing, migrating);
    let moved = cluster.nodes[to].command(&["CLUSTER", "COUNTKEYSINSLOT", &slot]).await;
    assert_ne!(moved.trim(), ":0", "the company's keys now live on the other master");
    // The live client got every event once, in order; a client resuming after the
    // first gets the rest, from the slot's new master.
    assert_eq!(read_ids(&mut live, acked.len()).await, acked);
    let mut resumed = a
        .stream_as(&viewer, &company, &["dashboard-updates"], Some(&acked[0]))
        .await;
    assert_eq!(read_ids(&mut resumed, acked.len() - 1).await, acked[1..]);
}

#[tokio::test]
async fn a_master_that_stops_answering_holds_up_only_its_own_companies() {
    // A long node timeout: the cluster does not fail the stopped master over meanwhile.
    let cluster = RedisCluster::start_with_node_timeout(60_000).await;
    let [stuck, live] = companies_on_two_masters(&cluster).await;
    let m = cluster.master_of(&stuck).await;
    // The host's seeds leave that master out, so its subscription is elsewhere; a read
    // that gets no answer waits 65 s (block_ms + 5 s), longer than the patience.
    let extra = format!("{}\nblock_ms = 60000", cluster.seeds_toml_without(m));
    let host = Node::start_with_redis("", &extra).await;
    let mut streams = Vec::new();
    for c in [&stuck, &live] {
        let mut s = host
            .stream_as(&token(c, "VIEWER"), c, &["dashboard-updates"], None)
            .await;
        assert_eq!(s.next_event().await.event, "connected");
        streams.push(s);
    }
    cluster.nodes[m].pause();
    // Its subscription cut, the reader subscribes again: the stopped master's company
    // fails its history check (2 s) and waits for the next tick; the others are read.
    // (This does not show reads in flight past a stuck one: a new connection's request
    // to the stopped node fails on its 2 s connect timeout, not the 65 s read timeout,
    // and a read already in flight cannot be arranged without a race.)
    let before = host.stats().await["backend"]["connects"].as_u64().unwrap();
    for (_, node) in cluster.nodes.iter().enumerate().filter(|(i, _)| *i != m) {
        node.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    }
    crate::wait_backend(&host, "the reader subscribed again", |b| {
        b["connects"].as_u64() > Some(before)
    })
    .await;
    // The other company's events flow while the stopped master's reads hang.
    let body = json!({"companyId": live, "channel": "dashboard-updates", "type": "update", "data": {}});
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let id = crate::publish_until_acked(&host, &token(&live, "PUBLISHER"), "k1", &body, deadline).await;
    assert_eq!(read_ids(&mut streams[1], 1).await, vec![id]);
    cluster.nodes[m].resume();
}

#[tokio::test]
async fn history_that_goes_back_under_a_connected_reader_resets_its_clients() {
    let cluster = RedisCluster::start().await;
    // A one-second tick: the company's check runs at the next one.
    let host = Node::start_with_redis("", &format!("{}\nblock_ms = 1000", cluster.seeds_toml())).await;
    let [company, _] = companies_on_two_masters(&cluster).await;
    let master = &cluster.nodes[cluster.master_of(&company).await];
    let mut s = host
        .stream_as(&token(&company, "VIEWER"), &company, &["dashboard-updates"], None)
        .await;
    assert_eq!(s.next_event().await.event, "connected");
    let publisher = token(&company, "PUBLISHER");
    let body =
        |n: u32| json!({"companyId": company, "channel": "dashboard-updates", "type": "update", "data": {"n": n}});
    let mut seen = Vec::new();
    for n in 0..2 {
        let (status, reply, _) = host.publish_keyed(&publisher, &[&format!("k{n}")], &body(n)).await;
        assert_eq!(status, 200, "{reply}");
        seen.push(reply["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(read_ids(&mut s, 2).await, seen);
    // The company's slot now holds what a replica promoted without those events would,
    // after one new publish whose ID is below what the client saw (the new master's
    // clock behind the old one's), and the publish's announcement: the cluster client
    // would have followed such a failover silently.
    let (ms, _) = seen[1].split_once('-').unwrap();
    let back = format!("{}-0", ms.parse::<u64>().unwrap() - 1);
    let stream = format!("sse:{{{company}}}:ch:dashboard-updates");
    let meta = format!("sse:{{{company}}}:meta");
    assert!(master.command(&["DEL", &stream]).await.starts_with(':'));
    let added = master
        .command(&["XADD", &stream, &back, "t", "update", "d", "{\"n\":9}"])
        .await;
    assert!(added.contains(&back), "{added}");
    assert!(master.command(&["HSET", &meta, "last", &back]).await.starts_with(':'));
    assert!(master.command(&["PUBLISH", "sse:notify", &meta]).await.starts_with(':'));
    // The reader sees the company's last ID below its cut: the client gets `reset`
    // rather than never hearing of the event it now misses.
    let e = s.next_event().await;
    assert_eq!(
        (e.event.as_str(), e.json()["reason"].clone()),
        ("reset", json!("unknown_id")),
        "{e:?}"
    );
}
