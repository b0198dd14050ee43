//! `sse-bench`: measures a real `sse-host` process on loopback.
//!
//! Run with: `cargo build --release -p sse-host -p sse-tests && $CARGO_TARGET_DIR/release/sse-bench`
//! (options: `--idle N`, `--fanout M`, `--events K`, `--rate R`, `--seconds S`,
//! `--backend memory|redis|both` (default both; redis needs `redis-server`), `--json FILE`).
//!
//! Scenarios, each bounded in count and time:
//! - idle: N streams held open; host RSS and PSS per stream.
//! - fan-out: M subscribers, K events published back to back; deliveries per second and
//!   per host CPU-second, publish-to-receive latency, loss/duplicates/order.
//! - fixed rate: M subscribers, R events/s for S seconds; latency p50/p99/max.
//!
//! The fan-out scenarios run again with the Redis backend (a redis-server started on a
//! loopback port), reporting Redis's CPU time beside the host's.

mod client;
mod host;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

struct Args {
    host_bin: PathBuf,
    idle: usize,
    fanout: usize,
    events: u64,
    rate: u64,
    seconds: u64,
    backend: String,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        host_bin: std::env::current_exe()?.with_file_name("sse-host"),
        idle: 15_000,
        fanout: 10_000,
        events: 100,
        rate: 100,
        seconds: 5,
        backend: "both".into(),
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host-bin" => a.host_bin = val()?.into(),
            "--idle" => a.idle = val()?.parse()?,
            "--fanout" => a.fanout = val()?.parse()?,
            "--events" => a.events = val()?.parse()?,
            "--rate" => a.rate = val()?.parse()?,
            "--seconds" => a.seconds = val()?.parse()?,
            "--json" => a.json = Some(val()?.into()),
            "--backend" => a.backend = val()?,
            _ => anyhow::bail!("unknown option {flag}; see the doc comment of tests/bench/main.rs"),
        }
    }
    ensure!(
        matches!(a.backend.as_str(), "memory" | "redis" | "both"),
        "--backend must be memory, redis or both"
    );
    ensure!(
        a.host_bin.exists(),
        "{} not found: build it with `cargo build --release -p sse-host`",
        a.host_bin.display()
    );
    Ok(a)
}

fn token(company: &str, role: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "bench", "company_id": company, "role": role, "exp": now + 3600});
    sse_policy::mint::hs256(&sse_policy::Secret::new(host::JWT_SECRET), &claims)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn open_many(
    addr: &str,
    n: usize,
    start: Instant,
    expect: u64,
) -> Result<Vec<(tokio::task::JoinHandle<Vec<(u64, u64)>>, client::Log)>> {
    let viewer = token("bench", "VIEWER");
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(200);
        left -= batch;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (addr, viewer) = (addr.to_owned(), viewer.clone());
            set.spawn(async move { client::subscribe(&addr, &viewer, "bench", start, expect).await });
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
    }
    Ok(out)
}

async fn idle(host: &host::HostProcess, n: usize) -> Result<serde_json::Value> {
    let (rss0, pss0) = (host.rss_kib(), host.pss_kib());
    let t = Instant::now();
    let streams = open_many(&host.addr, n, t, u64::MAX).await?;
    let open_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, pss1) = (host.rss_kib(), host.pss_kib());
    let per_rss = (rss1 - rss0) as f64 / n as f64;
    let per_pss = (pss1.saturating_sub(pss0)) as f64 / n as f64;
    println!("idle      {n:>6} streams  open {:.0}/s  host RSS {rss0} -> {rss1} KiB: {per_rss:.2} KiB/stream (PSS {per_pss:.2})", n as f64 / open_secs);
    for (task, _) in streams {
        task.abort();
    }
    Ok(
        json!({"streams": n, "rss_kib_per_stream": per_rss, "pss_kib_per_stream": per_pss, "rss_before_kib": rss0, "rss_after_kib": rss1, "opens_per_sec": n as f64 / open_secs}),
    )
}

async fn publish(http: &reqwest::Client, addr: &str, publisher: &str, n: u64, start: Instant) -> Result<()> {
    let body = format!(
        r#"{{"companyId":"bench","channel":"dashboard-updates","type":"bench","data":{{"n":{n},"t":{}}}}}"#,
        start.elapsed().as_micros()
    );
    let res = http
        .post(format!("http://{addr}/sse/publish"))
        .bearer_auth(publisher)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    ensure!(res.status() == 200, "publish failed: {}", res.status());
    Ok(())
}

/// Fan-out to `subs` subscribers; `store_pid` is Redis when the host uses it (its CPU
/// time is reported beside the host's).
async fn fanout(
    host: &host::HostProcess,
    subs: usize,
    events: u64,
    rate: Option<u64>,
    store_pid: Option<u32>,
) -> Result<serde_json::Value> {
    let start = Instant::now();
    let streams = open_many(&host.addr, subs, start, events).await?;
    let http = reqwest::Client::new();
    let publisher = token("bench", "PUBLISHER");
    let cpu0 = host.cpu_secs();
    let store0 = store_pid.map_or(0.0, host::cpu_secs_of);
    let t0 = Instant::now();
    for n in 0..events {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        publish(&http, &host.addr, &publisher, n, start).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies = Vec::new();
    let (mut lost, mut dup_or_disorder) = (0u64, 0u64);
    for (task, log) in &streams {
        while !task.is_finished() && log.lock().await.len() < events as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seen = log.lock().await.clone();
        lost += events.saturating_sub(seen.len() as u64);
        dup_or_disorder += seen.windows(2).filter(|w| w[1].0 != w[0].0 + 1).count() as u64;
        latencies.extend(seen.iter().map(|(_, l)| *l));
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = host.cpu_secs() - cpu0;
    let store_cpu = store_pid.map_or(0.0, host::cpu_secs_of) - store0;
    for (task, _) in streams {
        task.abort();
    }
    latencies.sort_unstable();
    let delivered = latencies.len() as u64;
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
    );
    let label = rate.map_or("max rate".to_owned(), |r| format!("{r} ev/s"));
    let store = store_pid.map_or(String::new(), |_| format!(" (+ Redis {store_cpu:.2} CPU-s)"));
    println!(
        "fan-out   {subs:>6} subs x {events} events ({label}): {:.0} deliveries/s, {:.0} per host CPU-s{store}, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms, lost {lost}, dup/disorder {dup_or_disorder}",
        delivered as f64 / secs,
        delivered as f64 / cpu.max(0.01),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0
    );
    Ok(
        json!({"subscribers": subs, "events": events, "rate": rate, "deliveries": delivered, "deliveries_per_sec": delivered as f64 / secs,
        "deliveries_per_cpu_sec": delivered as f64 / cpu.max(0.01), "host_cpu_secs": cpu, "redis_cpu_secs": store_cpu, "latency_us": {"p50": p50, "p99": p99, "max": max},
        "lost": lost, "duplicated_or_out_of_order": dup_or_disorder}),
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    println!(
        "sse-bench: {} on {} cores",
        args.host_bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut report = serde_json::Map::new();
    if args.backend != "redis" {
        println!("-- memory backend");
        let host = host::HostProcess::start(&args.host_bin, 1024, None).await?;
        report.insert("idle".into(), idle(&host, args.idle).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let max_rate = fanout(&host, args.fanout, args.events, None, None).await?;
        let fixed = fanout(
            &host,
            args.fanout.min(1000),
            args.rate * args.seconds,
            Some(args.rate),
            None,
        )
        .await?;
        report.insert("fanout_max_rate".into(), max_rate);
        report.insert("fanout_fixed_rate".into(), fixed);
    }
    if args.backend != "memory" {
        println!("-- redis backend (redis-server on loopback, no persistence)");
        let redis = sse_tests::redis::RedisServer::start().await;
        let host = host::HostProcess::start(&args.host_bin, 1024, Some(&redis.url())).await?;
        let max_rate = fanout(&host, args.fanout, args.events, None, redis.pid()).await?;
        let fixed = fanout(
            &host,
            args.fanout.min(1000),
            args.rate * args.seconds,
            Some(args.rate),
            redis.pid(),
        )
        .await?;
        report.insert(
            "redis".into(),
            json!({"fanout_max_rate": max_rate, "fanout_fixed_rate": fixed}),
        );
    }
    let report = serde_json::Value::Object(report);
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
