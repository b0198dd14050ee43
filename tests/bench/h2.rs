//! Idle streams the way browsers open them on HTTP/2: many streams multiplexed over
//! each connection. A browser page's EventSources share one h2 connection to the edge,
//! so a proxy's cost per stream there is not its cost per HTTP/1.1 connection.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::host::rss_kib;
use crate::target::Target;

/// `n` idle streams over HTTP/2 with prior knowledge, `per_connection` on each: the
/// memory per stream of the server and of the proxy in front. Run it on a fresh proxy:
/// an allocator keeps freed pages, so a proxy that already held streams grows less.
pub(crate) async fn idle(target: &Target, n: usize, per_connection: usize) -> Result<Value> {
    let connections = n.div_ceil(per_connection);
    let clients = (0..connections)
        .map(|_| reqwest::Client::builder().http2_prior_knowledge().build())
        .collect::<Result<Vec<_>, _>>()?;
    let url = format!(
        "http://{}/sse/stream?companyId={}&channel=dashboard-updates",
        target.sub_addr, target.company
    );
    let (rss0, front0) = (rss_kib(&target.pids), rss_kib(&target.front_pids));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let req = clients[i / per_connection].get(&url).bearer_auth(&target.viewer);
        set.spawn(async move {
            let res = req.send().await?;
            ensure!(res.status() == 200, "h2 stream refused: {}", res.status());
            Ok(res)
        });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        held.push(r??);
    }
    let opens = n as f64 / t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, front1) = (rss_kib(&target.pids), rss_kib(&target.front_pids));
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
    println!(
        "  idle h2    {n:>6} streams, {per_connection} per connection: {:.2} KiB RSS/stream, proxy {:.2} KiB/stream; opened {opens:.0}/s",
        per(rss0, rss1),
        per(front0, front1)
    );
    drop(held);
    drop(clients);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(
        json!({"streams": n, "per_connection": per_connection, "rss_kib_per_stream": per(rss0, rss1),
        "proxy_rss_kib_per_stream": per(front0, front1), "opens_per_sec": opens}),
    )
}
