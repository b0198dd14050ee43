//! The floor of paced fan-out: what writing each event to each subscriber socket costs
//! when nothing else is done, measured in the same run as the servers.
//!
//! Why: at a paced rate (1k subscribers × 100 events/s) a write cannot carry two events
//! without adding latency, so every delivery is at least one `send()` on a TCP socket,
//! and on loopback the sender also pays the receiver's TCP work. A server's CPU per
//! delivery is only meaningful next to that floor; this machine is shared and noisy, so
//! the floor is measured each run rather than quoted.
//!
//! One thread owns `subs` accepted sockets and, at `rate` events/s, writes one 100-byte
//! frame to each with a blocking `write`; its own CPU time (from
//! `/proc/thread-self/stat`) is the floor. The readers are tokio tasks like the bench's
//! subscribers: they wait on readiness and read whatever arrives, as a browser would.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// The size of one event frame, about what both servers write per paced event.
const FRAME: usize = 100;

/// Measures the floor: `subs` sockets, `events` frames each at `rate` frames/s.
pub(crate) async fn paced(subs: usize, events: u64, rate: u64) -> Result<Value> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || send_paced(&listener, subs, events, rate));
    let mut readers = Vec::with_capacity(subs);
    for _ in 0..subs {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut total = 0u64;
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        }));
    }
    let cpu = tokio::task::spawn_blocking(move || sender.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the floor's sender panicked"))??;
    let mut received = 0;
    for r in readers {
        received += r.await?;
    }
    let deliveries = subs as u64 * events;
    ensure!(
        received == deliveries * FRAME as u64,
        "floor: {received} bytes received, {} sent",
        deliveries * FRAME as u64
    );
    let us = cpu * 1e6 / deliveries.max(1) as f64;
    println!(
        "  floor      {subs:>6} sockets x {events} frames ({rate}/s): {us:.2} us CPU per delivery (one write each)"
    );
    Ok(
        json!({"subscribers": subs, "events": events, "rate": rate, "cpu_secs": cpu,
        "cpu_us_per_delivery": us, "deliveries_per_cpu_sec": deliveries as f64 / cpu.max(1e-9)}),
    )
}

/// Accepts `subs` sockets, writes the frames paced, returns this thread's CPU seconds
/// spent writing (accepting excluded). The sockets close when it returns.
fn send_paced(listener: &TcpListener, subs: usize, events: u64, rate: u64) -> Result<f64> {
    let mut socks: Vec<TcpStream> = Vec::with_capacity(subs);
    for _ in 0..subs {
        let (s, _) = listener.accept().context("floor: accept")?;
        s.set_nodelay(true)?;
        socks.push(s);
    }
    let mut frame = [b'x'; FRAME];
    frame[FRAME - 2..].copy_from_slice(b"\n\n");
    let cpu0 = thread_cpu_secs()?;
    let t0 = Instant::now();
    for n in 0..events {
        let due = t0 + Duration::from_secs_f64(n as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for s in &mut socks {
            s.write_all(&frame)?;
        }
    }
    thread_cpu_secs().map(|c| c - cpu0)
}

/// This thread's user + system CPU seconds.
fn thread_cpu_secs() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let after = stat.rsplit_once(')').context("/proc/thread-self/stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .context("/proc/thread-self/stat: utime or stime missing")
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0) // utime, stime (fields 14, 15); USER_HZ is 100
}
