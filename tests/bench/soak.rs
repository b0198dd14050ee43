//! Churn and soak: long-lived streams that must get every event once, in order, while
//! short-lived streams come and go (half aborted mid-replay, half mid-stream) and events
//! are published at a steady rate. Samples memory, descriptors and every connection
//! count over time; at the end every count must be back to the live streams, and memory
//! within 10% of its level after warm-up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::client;
use crate::host::rss_kib;
use crate::scenarios::{collect, open_many};
use crate::target::Target;

/// The flags (`--soak SECS --soak-long N --soak-churn PER_SEC --soak-rate EV_PER_SEC`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SoakArgs {
    pub(crate) secs: u64,
    pub(crate) long: usize,
    pub(crate) churn_per_sec: u64,
    pub(crate) rate: u64,
}

/// Where the counts are read: the host's `/metrics`, and Envoy's admin when in front.
pub(crate) struct Probes {
    pub(crate) host: String,
    pub(crate) envoy_admin: Option<String>,
    /// A filter counts streams (embedded or in Envoy): its count must be readable.
    pub(crate) filter: bool,
}

/// Below this, the run is a smoke: RSS is reported, not checked (warm-up is too short).
const RSS_CHECK_MIN_SECS: u64 = 60;

/// One sample of what the soak watches.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_secs: u64,
    rss_kib: u64,
    front_rss_kib: u64,
    fds: u64,
    host_streams: i64,
    filter_streams: Option<i64>,
}

impl Sample {
    fn json(&self) -> Value {
        json!({"t": self.at_secs, "host_rss_kib": self.rss_kib, "proxy_rss_kib": self.front_rss_kib,
               "host_fds": self.fds, "host_streams": self.host_streams, "filter_streams": self.filter_streams})
    }
}

fn fds(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map(|d| d.count() as u64)
        .sum()
}

/// The sum of the values of metric lines named `name` (any labels) in a text page.
fn metric(page: &str, name: &str) -> Option<i64> {
    let values: Vec<i64> = page
        .lines()
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{' | b':')))
        .filter_map(|l| l.rsplit([' ', ':']).next()?.trim().parse::<f64>().ok())
        .map(|v| v as i64)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

async fn sample(http: &reqwest::Client, target: &Target, probes: &Probes, start: Instant) -> Sample {
    let page = |url: String| async move { http.get(url).send().await.ok()?.text().await.ok() };
    let host = page(format!("http://{}/metrics", probes.host))
        .await
        .unwrap_or_default();
    let filter = match &probes.envoy_admin {
        Some(admin) => {
            let stats = page(format!("http://{admin}/stats?filter=sse_filter_active_streams")).await;
            stats.and_then(|s| metric(&s, "wasmcustom.sse_filter_active_streams"))
        }
        None => metric(&host, "sse_wasm_sse_filter_sse_filter_active_streams"),
    };
    Sample {
        at_secs: start.elapsed().as_secs(),
        rss_kib: rss_kib(&target.pids),
        front_rss_kib: rss_kib(&target.front_pids),
        fds: fds(&target.pids),
        host_streams: metric(&host, "sse_connections").unwrap_or(-1),
        filter_streams: filter,
    }
}

/// Opens short-lived streams at `per_sec` until `stop`: even ones resume from the first
/// event (a long replay) and are aborted as soon as they are registered, odd ones are
/// live and aborted after 50-450 ms. Returns (opened, refused).
async fn churn(target: Target, per_sec: u64, first_id: Arc<OnceLock<String>>, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (opened, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(1) as f64));
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        i += 1;
        let resume = (i % 2 == 0).then(|| first_id.get().cloned()).flatten();
        let request = target.subscribe_request(resume.as_deref());
        let (addr, ready) = (target.sub_addr.clone(), target.ready());
        let (opened, refused) = (opened.clone(), refused.clone());
        let linger = Duration::from_millis(if resume.is_some() { 0 } else { 50 + (i * 37) % 400 });
        tasks.spawn(async move {
            match client::subscribe(&addr, &request, ready, Instant::now(), u64::MAX, None).await {
                Ok((task, _)) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(linger).await;
                    task.abort(); // the socket closes with RST: an abrupt client
                }
                Err(_) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    (opened.load(Ordering::Relaxed), refused.load(Ordering::Relaxed))
}

/// Runs the soak against `target`; fails when a check does not hold.
pub(crate) async fn soak(target: &Target, probes: &Probes, a: SoakArgs) -> Result<Value> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let events = a.rate * a.secs;
    let long = open_many(target, a.long, start, events, None).await?;
    let first_id = Arc::new(OnceLock::new());
    let stop = Arc::new(AtomicBool::new(false));
    let churner = tokio::spawn(churn(
        target.clone_for_task(),
        a.churn_per_sec,
        first_id.clone(),
        stop.clone(),
    ));
    let publisher = {
        let (target, http, first_id) = (target.clone_for_task(), http.clone(), first_id.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            for n in 0..events {
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(n as f64 / a.rate as f64)).into()).await;
                let id = target.publish(&http, n, start.elapsed().as_micros()).await?;
                let _ = first_id.set(id);
            }
            anyhow::Ok(())
        })
    };
    let every = Duration::from_secs((a.secs / 20).clamp(1, 60));
    let mut samples = Vec::new();
    while !publisher.is_finished() {
        tokio::time::sleep(every).await;
        let s = sample(&http, target, probes, start).await;
        println!(
            "  soak t={:>5}s host RSS {} KiB, fds {}, host streams {}, filter streams {:?}, proxy RSS {} KiB",
            s.at_secs, s.rss_kib, s.fds, s.host_streams, s.filter_streams, s.front_rss_kib
        );
        samples.push(s);
    }
    publisher.await??;
    stop.store(true, Ordering::Relaxed);
    let (opened, refused) = churner.await?;
    let (delivered, lost, disorder, _) = collect(&long, events, |_| true).await;
    // Every short-lived stream is gone: the counts settle at the long-lived ones.
    let live = a.long as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = sample(&http, target, probes, start).await;
    while (last.host_streams != live || last.filter_streams.is_some_and(|f| f != live)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = sample(&http, target, probes, start).await;
    }
    for (task, _) in long {
        task.abort();
    }
    // Warm-up: the first tenth of the run (at least one sample).
    let warm = samples.get(samples.len() / 10).copied().unwrap_or(last);
    let growth = last.rss_kib as f64 / warm.rss_kib.max(1) as f64 - 1.0;
    println!(
        "  soak end: {opened} short-lived streams opened ({refused} refused), long-lived got {delivered} of {} \
         (lost {lost}, dup/disorder {disorder}); host streams {}, filter streams {:?}; host RSS {} KiB after warm-up, \
         {} KiB at the end ({:+.1}%)",
        events * a.long as u64,
        last.host_streams,
        last.filter_streams,
        warm.rss_kib,
        last.rss_kib,
        growth * 100.0
    );
    let report = json!({"seconds": a.secs, "long_lived": a.long, "churn_per_sec": a.churn_per_sec,
        "events_per_sec": a.rate, "short_lived_opened": opened, "short_lived_refused": refused,
        "delivered": delivered, "lost": lost, "duplicated_or_out_of_order": disorder,
        "rss_growth_after_warmup": growth, "samples": samples.iter().map(Sample::json).collect::<Vec<_>>(),
        "end": last.json()});
    ensure!(
        lost == 0 && disorder == 0,
        "long-lived streams lost {lost} events, {disorder} out of order"
    );
    ensure!(
        opened > 0 && refused == 0,
        "short-lived streams: {opened} opened, {refused} refused"
    );
    ensure!(
        last.host_streams == live,
        "host streams {} != live {live}",
        last.host_streams
    );
    let filter_ok = if probes.filter {
        last.filter_streams == Some(live)
    } else {
        last.filter_streams.is_none()
    };
    ensure!(filter_ok, "filter streams {:?} != live {live}", last.filter_streams);
    ensure!(
        a.secs < RSS_CHECK_MIN_SECS || growth <= 0.10,
        "host RSS grew {:.1}% after warm-up",
        growth * 100.0
    );
    Ok(report)
}
