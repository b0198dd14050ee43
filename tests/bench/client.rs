//! Bench subscribers: raw HTTP/1.1 sockets (or HTTP/1.1 over TLS) reading an event
//! stream line by line, so the client costs the same against every server.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What one subscriber observed: (event index, latency in µs) in arrival order.
pub(crate) type Log = Arc<Mutex<Vec<(u64, u64)>>>;

/// A subscriber's reader task and its log.
pub(crate) type Sub = (tokio::task::JoinHandle<()>, Log);

/// A plain or TLS connection.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Sends `request` (over TLS with `tls`, as `localhost`), returns once a line starting with `ready` arrived (the server has
/// registered the subscriber); a task then logs `{"n":..,"t":..}` events until `expect`
/// of them arrived, and keeps the socket open until aborted.
pub(crate) async fn subscribe(
    addr: &str,
    request: &str,
    ready: &str,
    start: Instant,
    expect: u64,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<Sub> {
    let sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    // Close with RST: no TIME_WAIT, so tens of thousands of connections per scenario do
    // not exhaust the ephemeral ports, and a later target is not slowed by an earlier one.
    // (Deprecated because a non-zero linger blocks the thread on drop; zero never does.)
    #[allow(deprecated)]
    sock.set_linger(Some(std::time::Duration::ZERO))?;
    let mut sock: Box<dyn Io> = match tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            Box::new(tls.connect(name, sock).await?)
        }
        None => Box::new(sock),
    };
    sock.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(4096, sock);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("stream closed before it was ready");
        }
        if line.starts_with("HTTP/1.1 ") && !line.starts_with("HTTP/1.1 200") {
            bail!("stream refused: {}", line.trim());
        }
        if line.starts_with(ready) {
            break;
        }
    }
    let log: Log = Arc::default();
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut line = String::new();
        let mut n_seen = 0u64;
        while n_seen < expect {
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
                task_log.lock().await.push((n, now.saturating_sub(t)));
                n_seen += 1;
            }
        }
        // Keep the socket open until the bench ends the scenario.
        std::future::pending::<()>().await;
    });
    Ok((task, log))
}
