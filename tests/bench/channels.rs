//! Many channels on Redis: `--channels` (company, channel) streams followed by one host,
//! each with one subscriber (8 channels per stream, one company per stream), and
//! `--channel-rate` events/s spread over them. What it costs the host and Redis to follow
//! that many streams while few are active, and the fan-out latency; on one Redis (the
//! reader's blocking XREADs over every followed stream) and on a Redis Cluster (the
//! reader waiting on announcements).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::host::{cpu_secs, HostOptions, HostProcess};
use crate::scenarios::{close, open_many, percentile};
use crate::target::Target;
use crate::Args;

/// The bench policy's channels: every stream of this scenario follows all of them.
pub(crate) const NAMES: [&str; 8] = [
    "dashboard-updates",
    "evidence-updates",
    "report-updates",
    "ch-3",
    "ch-4",
    "ch-5",
    "ch-6",
    "ch-7",
];

/// The scenario on one Redis and on a Redis Cluster.
pub(crate) async fn suite(a: &Args) -> Result<Value> {
    let mut out = serde_json::Map::new();
    let filter = sse_tests::filter_wasm();
    for reader in ["blocking", "announced"] {
        println!(
            "sse-host on one Redis, {} channels, {} {reader} reader(s)",
            a.channels, a.redis_readers
        );
        let redis = sse_tests::redis::RedisServer::start().await;
        let url = redis.url();
        let options = HostOptions {
            redis_url: Some(&url),
            redis_readers: a.redis_readers,
            redis_reader: reader,
            ..HostOptions::plain("native", &filter)
        };
        let host = HostProcess::start(&a.host_bin, &options).await?;
        let store: Vec<u32> = redis.pid().into_iter().collect();
        out.insert(format!("redis_{reader}"), run(a, &host, &store).await?);
    }
    {
        println!(
            "sse-host on a Redis Cluster (3 masters, 3 replicas), {} channels, {} reader(s)",
            a.channels, a.redis_readers
        );
        let cluster = sse_tests::redis::RedisCluster::start().await;
        let seeds = cluster.seeds_toml();
        let options = HostOptions {
            redis_url: Some(""),
            redis_cluster: Some(&seeds),
            redis_readers: a.redis_readers,
            ..HostOptions::plain("native", &filter)
        };
        let host = HostProcess::start(&a.host_bin, &options).await?;
        let store: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
        out.insert("cluster".into(), run(a, &host, &store).await?);
    }
    Ok(Value::Object(out))
}

async fn run(a: &Args, host: &HostProcess, store: &[u32]) -> Result<Value> {
    let streams = a.channels.div_ceil(NAMES.len());
    let base = crate::ours("channels", &host.addr, &host.addr, vec![host.pid()], Vec::new());
    let mut per: Vec<Target> = Vec::with_capacity(streams);
    for s in 0..streams {
        let mut t = base.for_company(&format!("k{s}"));
        t.channels = NAMES.iter().map(|n| (*n).to_owned()).collect();
        per.push(t);
    }
    let total = a.channel_rate * a.channel_seconds;
    // Event e goes to stream e % streams, as its (e / streams)-th event, on one of its
    // channels in turn: every stream sees consecutive `n`.
    let expect = |s: usize| (total as usize).saturating_sub(s).div_ceil(streams) as u64;
    let start = Instant::now();
    let mut subs = Vec::with_capacity(streams);
    for (s, t) in per.iter().enumerate() {
        subs.extend(open_many(t, 1, start, expect(s), None).await?);
    }
    let opened = start.elapsed().as_secs_f64();
    // Idle first: what following them costs with nothing published.
    let (cpu0, store0) = (cpu_secs(&[host.pid()]), cpu_secs(store));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (idle_cpu, idle_store) = (cpu_secs(&[host.pid()]) - cpu0, cpu_secs(store) - store0);
    let http = reqwest::Client::new();
    let (cpu0, store0) = (cpu_secs(&[host.pid()]), cpu_secs(store));
    let t0 = Instant::now();
    for e in 0..total {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(e as f64 / a.channel_rate as f64)).into()).await;
        let (s, k) = ((e % streams as u64) as usize, e / streams as u64);
        let channel = NAMES[(k as usize) % NAMES.len()];
        per[s]
            .publish_on(&http, channel, k, start.elapsed().as_micros())
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut delivered, mut lost, mut latencies) = (0u64, 0u64, Vec::new());
    for (s, (task, log)) in subs.iter().enumerate() {
        let want = expect(s);
        while !task.is_finished() && (log.lock().await.len() as u64) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seen = log.lock().await.clone();
        delivered += seen.len() as u64;
        lost += want.saturating_sub(seen.len() as u64);
        latencies.extend(seen.iter().map(|(_, l)| *l));
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, store_cpu) = (cpu_secs(&[host.pid()]) - cpu0, cpu_secs(store) - store0);
    close(subs);
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "  channels  {} streams x {} channels, opened in {opened:.1} s; idle: host {:.0} ms CPU/s, Redis {:.0} ms CPU/s; \
         {} ev/s: host {:.2} CPU-s, Redis {:.2} CPU-s, p50 {:.1} ms p99 {:.1} ms, lost {lost}",
        streams,
        NAMES.len(),
        idle_cpu * 1000.0 / 5.0,
        idle_store * 1000.0 / 5.0,
        a.channel_rate,
        cpu,
        store_cpu,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
    );
    Ok(
        json!({"streams": streams, "channels": streams * NAMES.len(), "rate": a.channel_rate, "events": total,
        "deliveries": delivered, "lost": lost, "seconds": secs,
        "idle_host_cpu_ms_per_sec": idle_cpu * 1000.0 / 5.0, "idle_redis_cpu_ms_per_sec": idle_store * 1000.0 / 5.0,
        "host_cpu_secs": cpu, "redis_cpu_secs": store_cpu, "latency_us": {"p50": p50, "p99": p99}}),
    )
}
