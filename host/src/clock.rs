//! Wall-clock time, read in one place.
//!
//! Tokens, signed identities and event timestamps speak Unix time; everything that waits
//! (deadlines, heartbeats, idle timers) uses tokio's monotonic `Instant` instead, so a
//! clock step cannot end streams early or late. A clock before 1970 reads as 0: every
//! token then looks expired and every signature stale, which fails closed.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Seconds since the Unix epoch (token `exp`, identity timestamps).
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// Milliseconds since the Unix epoch (event timestamps, `serverTime`, history age).
pub fn unix_millis() -> u64 {
    since_epoch().as_millis() as u64
}

/// Nanoseconds since the Unix epoch (proxy-wasm's `proxy_get_current_time_nanoseconds`).
pub fn unix_nanos() -> u64 {
    since_epoch().as_nanos() as u64
}
