//! Bench subscribers: raw HTTP/1.1 sockets reading an event stream line by line.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What one subscriber observed: (event index, latency in µs) in arrival order.
pub(crate) type Log = Arc<Mutex<Vec<(u64, u64)>>>;

/// Opens a stream and returns once `connected` arrived; the reader keeps going in a task
/// that logs `{"n":..,"t":..}` events until `expect` of them arrived or the socket ends.
pub(crate) async fn subscribe(
    addr: &str,
    token: &str,
    company: &str,
    start: Instant,
    expect: u64,
) -> Result<(tokio::task::JoinHandle<Vec<(u64, u64)>>, Log)> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let req = format!(
        "GET /sse/stream?companyId={company}&channel=dashboard-updates HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(4096, sock);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("stream closed before `connected`");
        }
        if line.starts_with("HTTP/1.1 ") && !line.starts_with("HTTP/1.1 200") {
            bail!("stream refused: {}", line.trim());
        }
        if line.starts_with("event: connected") {
            break;
        }
    }
    let log: Log = Arc::default();
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut line = String::new();
        while (seen.len() as u64) < expect {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(json) = line.strip_prefix("data: {\"n\":") {
                let now = start.elapsed().as_micros() as u64;
                let mut parts = json.trim_end().trim_end_matches('}').split(",\"t\":");
                let n = parts.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
                let t: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(now);
                seen.push((n, now.saturating_sub(t)));
            }
        }
        task_log.lock().await.extend_from_slice(&seen);
        // Keep the socket open until the bench ends the scenario.
        std::future::pending::<()>().await;
        seen
    });
    Ok((task, log))
}
