//! The scenarios, each bounded in count and time, run the same way against every target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::client::{self, Sub};
use crate::host::{cpu_secs, pss_kib, rss_kib};
use crate::target::Target;

/// Connections kept in flight while opening many (`SSE_BENCH_CONCURRENCY`, default 256).
fn concurrency() -> usize {
    std::env::var("SSE_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}
/// Longest wait for deliveries in one scenario.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);

/// Opens `n` subscribers, [`concurrency`] at a time; each expects `expect` events.
pub(crate) async fn open_many(
    target: &Target,
    n: usize,
    start: Instant,
    expect: u64,
    last_id: Option<&str>,
) -> Result<Vec<Sub>> {
    let request: Arc<str> = target.subscribe_request(last_id).into();
    let addr: Arc<str> = target.sub_addr.as_str().into();
    let ready = target.ready();
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(n);
    let mut launched = 0;
    let in_flight = concurrency();
    while out.len() < n {
        while launched < n && set.len() < in_flight {
            let (addr, request, tls) = (addr.clone(), request.clone(), target.tls.clone());
            set.spawn(async move { client::subscribe(&addr, &request, ready, start, expect, tls.as_ref()).await });
            launched += 1;
        }
        match set.join_next().await {
            Some(r) => out.push(r??),
            None => break,
        }
    }
    Ok(out)
}

pub(crate) fn close(subs: Vec<Sub>) {
    for (task, _) in subs {
        task.abort();
    }
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// N idle streams: memory per stream of the server (and of the proxy in front).
pub(crate) async fn idle(target: &Target, n: usize) -> Result<Value> {
    let (rss0, pss0, front0) = (
        rss_kib(&target.pids),
        pss_kib(&target.pids),
        rss_kib(&target.front_pids),
    );
    let t = Instant::now();
    let subs = open_many(target, n, t, 0, None).await?;
    let opens = n as f64 / t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, pss1, front1) = (
        rss_kib(&target.pids),
        pss_kib(&target.pids),
        rss_kib(&target.front_pids),
    );
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
    let front = if target.front_pids.is_empty() {
        String::new()
    } else {
        format!(", proxy {:.2} KiB/stream", per(front0, front1))
    };
    println!(
        "  idle       {n:>6} streams: {:.2} KiB RSS/stream (PSS {:.2}; {rss0} -> {rss1} KiB){front}; opened {opens:.0}/s",
        per(rss0, rss1),
        per(pss0, pss1)
    );
    close(subs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(
        json!({"streams": n, "rss_kib_per_stream": per(rss0, rss1), "pss_kib_per_stream": per(pss0, pss1),
        "rss_before_kib": rss0, "rss_after_kib": rss1, "proxy_rss_kib_per_stream": per(front0, front1),
        "opens_per_sec": opens}),
    )
}

/// Stream setups per second (`n` connects, [`concurrency`] in flight).
pub(crate) async fn connect_rate(target: &Target, n: usize) -> Result<Value> {
    let cpu0 = cpu_secs(&target.pids) + cpu_secs(&target.front_pids);
    let t = Instant::now();
    let subs = open_many(target, n, t, 0, None).await?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let cpu_us = (cpu_secs(&target.pids) + cpu_secs(&target.front_pids) - cpu0) * 1e6 / n as f64;
    println!("  connects   {n:>6} streams: {rate:.0} setups/s, {cpu_us:.0} us server CPU per setup");
    close(subs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(json!({"streams": n, "setups_per_sec": rate, "server_cpu_us_per_setup": cpu_us}))
}

/// Fan-out to `subs` subscribers, back to back or at `rate` events/s. `store_pids` (Redis)
/// are measured beside the server.
pub(crate) async fn fanout(
    target: &Target,
    subs: usize,
    events: u64,
    rate: Option<u64>,
    store_pids: &[u32],
) -> Result<Value> {
    let start = Instant::now();
    let streams = open_many(target, subs, start, events, None).await?;
    let http = reqwest::Client::new();
    let (cpu0, store0) = (cpu_secs(&target.pids), cpu_secs(store_pids));
    let t0 = Instant::now();
    for n in 0..events {
        if let Some(rate) = rate {
            tokio::time::sleep_until((t0 + Duration::from_secs_f64(n as f64 / rate as f64)).into()).await;
        }
        target.publish(&http, n, start.elapsed().as_micros()).await?;
    }
    let (delivered, lost, disorder, mut latencies) = collect(&streams, events, |_| true).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, store_cpu) = (cpu_secs(&target.pids) - cpu0, cpu_secs(store_pids) - store0);
    close(streams);
    latencies.sort_unstable();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
    );
    let label = rate.map_or("max rate".to_owned(), |r| format!("{r} ev/s"));
    let store = if store_pids.is_empty() {
        String::new()
    } else {
        format!(" (+ Redis {store_cpu:.2} CPU-s)")
    };
    println!(
        "  fan-out    {subs:>6} subs x {events} ({label}): {:.0} deliveries/s, {:.0} per server CPU-s{store}, \
         p50 {:.1} ms p99 {:.1} ms max {:.1} ms, lost {lost}, dup/disorder {disorder}",
        delivered as f64 / secs,
        delivered as f64 / cpu.max(0.01),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(
        json!({"subscribers": subs, "events": events, "rate": rate, "deliveries": delivered,
        "deliveries_per_sec": delivered as f64 / secs, "deliveries_per_cpu_sec": delivered as f64 / cpu.max(0.01),
        "cpu_us_per_delivery": cpu * 1e6 / delivered.max(1) as f64, "server_cpu_secs": cpu, "redis_cpu_secs": store_cpu, "latency_us": {"p50": p50, "p99": p99, "max": max},
        "lost": lost, "duplicated_or_out_of_order": disorder}),
    )
}

/// Publish ingress: `events` events from `publishers` concurrent keep-alive clients, one
/// event per request (`batch` 1) or `batch` events per request; no subscribers.
pub(crate) async fn ingress(target: &Target, events: u64, publishers: usize, batch: usize) -> Result<Value> {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu0 = cpu_secs(&target.pids);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..publishers {
        let (http, next) = (http.clone(), next.clone());
        let target = target.clone_for_task();
        set.spawn(async move {
            loop {
                let n = next.fetch_add(batch as u64, std::sync::atomic::Ordering::Relaxed);
                if n >= events {
                    return Ok::<(), anyhow::Error>(());
                }
                if batch == 1 {
                    target.publish(&http, n, 0).await?;
                } else {
                    target.publish_batch(&http, batch).await?;
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(&target.pids) - cpu0;
    let rate = events as f64 / secs;
    println!(
        "  ingress    {events:>6} events, {publishers} publishers, {batch}/request: {rate:.0} events/s, {:.1} us server CPU per event",
        cpu * 1e6 / events as f64
    );
    Ok(
        json!({"events": events, "publishers": publishers, "batch": batch, "events_per_sec": rate,
        "server_cpu_us_per_event": cpu * 1e6 / events as f64}),
    )
}

/// Reconnect storm: `clients` connect at once, each resuming `behind` events back;
/// time until every one has caught up.
pub(crate) async fn storm(target: &Target, clients: usize, behind: u64, store_pids: &[u32]) -> Result<Value> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let base = target.publish(&http, 0, 0).await?;
    for n in 1..=behind {
        target.publish(&http, n, 0).await?;
    }
    let (cpu0, store0) = (cpu_secs(&target.pids), cpu_secs(store_pids));
    let t0 = Instant::now();
    let streams = open_many(target, clients, start, behind, Some(&base)).await?;
    let (delivered, lost, disorder, _) = collect(&streams, behind, |n| n >= 1).await;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, store_cpu) = (cpu_secs(&target.pids) - cpu0, cpu_secs(store_pids) - store0);
    close(streams);
    println!(
        "  storm      {clients:>6} clients x {behind} behind: all caught up in {secs:.2} s ({cpu:.2} server CPU-s, \
         {store_cpu:.2} Redis CPU-s), {delivered} delivered, lost {lost}, dup/disorder {disorder}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(
        json!({"clients": clients, "behind": behind, "caught_up_secs": secs, "deliveries": delivered,
        "lost": lost, "duplicated_or_out_of_order": disorder}),
    )
}

/// Waits (bounded) until every stream logged `expect` events; returns delivered, lost,
/// duplicated-or-out-of-order (consecutive `n` expected) and all latencies.
pub(crate) async fn collect(streams: &[Sub], expect: u64, counts: impl Fn(u64) -> bool) -> (u64, u64, u64, Vec<u64>) {
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    let (mut delivered, mut lost, mut disorder) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    for (task, log) in streams {
        while !task.is_finished() && (log.lock().await.len() as u64) < expect && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seen: Vec<(u64, u64)> = log.lock().await.iter().copied().filter(|(n, _)| counts(*n)).collect();
        delivered += seen.len() as u64;
        lost += expect.saturating_sub(seen.len() as u64);
        disorder += seen.windows(2).filter(|w| w[1].0 != w[0].0 + 1).count() as u64;
        latencies.extend(seen.iter().map(|(_, l)| *l));
    }
    (delivered, lost, disorder, latencies)
}

/// Many tenants: `companies` × `viewers` streams, `rate` publishes/s spread round-robin
/// over the companies (through whatever edge the target has), `per_company` events each.
/// Server CPU per delivery, latency, and that every viewer got exactly its own
/// company's events, in order.
pub(crate) async fn tenants(
    target: &Target,
    companies: usize,
    viewers: usize,
    rate: u64,
    per_company: u64,
) -> Result<Value> {
    let start = Instant::now();
    let per: Vec<Target> = (0..companies).map(|c| target.for_company(&format!("t{c}"))).collect();
    let mut streams: Vec<Vec<Sub>> = Vec::with_capacity(companies);
    for t in &per {
        streams.push(open_many(t, viewers, start, per_company, None).await?);
    }
    let http = reqwest::Client::new();
    let cpu0 = cpu_secs(&target.pids) + cpu_secs(&target.front_pids);
    let t0 = Instant::now();
    let events = per_company * companies as u64;
    for i in 0..events {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / rate as f64)).into()).await;
        let (c, k) = ((i % companies as u64) as usize, i / companies as u64);
        per[c].publish(&http, k, start.elapsed().as_micros()).await?;
    }
    let (mut delivered, mut lost, mut disorder, mut latencies) = (0, 0, 0, Vec::new());
    for subs in &streams {
        let (d, l, o, lat) = collect(subs, per_company, |_| true).await;
        (delivered, lost, disorder) = (delivered + d, lost + l, disorder + o);
        latencies.extend(lat);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(&target.pids) + cpu_secs(&target.front_pids) - cpu0;
    for subs in streams {
        close(subs);
    }
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    // More than expected means a viewer saw another company's event.
    let expected = per_company * (companies * viewers) as u64;
    let foreign = delivered.saturating_sub(expected);
    println!(
        "  tenants    {companies} companies x {viewers} viewers, {rate} publishes/s: {cpu:.2} server CPU-s \
         ({:.1} us per delivery), p50 {:.1} ms p99 {:.1} ms, lost {lost}, dup/disorder {disorder}, foreign {foreign}",
        cpu * 1e6 / delivered.max(1) as f64,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(
        json!({"companies": companies, "viewers": viewers, "rate": rate, "events": events, "deliveries": delivered,
        "server_cpu_secs": cpu, "server_cpu_us_per_delivery": cpu * 1e6 / delivered.max(1) as f64,
        "seconds": secs, "latency_us": {"p50": p50, "p99": p99}, "lost": lost,
        "duplicated_or_out_of_order": disorder, "foreign": foreign}),
    )
}
