//! The `[http]` table: how long and how many connections may take to send a request, and
//! the bounds of HTTP/2 connections.

use std::time::Duration;

use serde::Deserialize;

use super::Problems;

/// Connection handling before a request exists.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// How long a new connection may take, from accept, to send its whole first request
    /// head (sniffing the protocol and reading the head share it); then it is dropped.
    pub head_timeout: Duration,
    /// Connections that have not sent a whole first request head yet, at most; more are
    /// closed at accept. Bounds what silent or trickling clients (slowloris) can hold.
    pub max_handshaking: usize,
    /// The same, from one IP address: one client cannot take every place.
    pub max_handshaking_per_peer: usize,
    /// HTTP/2 connections (h2c or TLS) open at once from one IP address, for their whole
    /// life: an h2 connection outlives its requests (up to `h2_idle_timeout`), so without
    /// this one client could hold connections (and TLS sessions) until the fds run out.
    /// (An HTTP/1.1 connection is closed when idle past the head timeout, and one with a
    /// stream counts against the stream limits.)
    pub max_connections_per_peer: usize,
    /// Streams one HTTP/2 connection may have open at once (its SETTINGS); a peer that
    /// needs more opens another connection (Envoy does), each counted and bounded.
    pub h2_max_concurrent_streams: u32,
    /// An HTTP/2 connection with no open stream for this long is closed with GOAWAY.
    pub h2_idle_timeout: Duration,
}

/// The `[http]` defaults, defined once here.
impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(30),
            max_handshaking: 4096,
            max_handshaking_per_peer: 256,
            max_connections_per_peer: 1024,
            h2_max_concurrent_streams: 1000,
            h2_idle_timeout: Duration::from_secs(300),
        }
    }
}

/// `[http]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpFile {
    /// Seconds a new connection has to send its first request head.
    pub head_timeout_secs: u64,
    /// Connections without a complete first request head, at most.
    pub max_handshaking: usize,
    /// The same, from one IP address.
    pub max_handshaking_per_peer: usize,
    /// HTTP/2 connections open at once from one IP address.
    pub max_connections_per_peer: usize,
    /// Streams one HTTP/2 connection may have open at once.
    pub h2_max_concurrent_streams: u32,
    /// Seconds an HTTP/2 connection may stay without an open stream.
    pub h2_idle_timeout_secs: u64,
}

impl Default for HttpFile {
    fn default() -> Self {
        let h = HttpSettings::default();
        Self {
            head_timeout_secs: h.head_timeout.as_secs(),
            max_handshaking: h.max_handshaking,
            max_handshaking_per_peer: h.max_handshaking_per_peer,
            max_connections_per_peer: h.max_connections_per_peer,
            h2_max_concurrent_streams: h.h2_max_concurrent_streams,
            h2_idle_timeout_secs: h.h2_idle_timeout.as_secs(),
        }
    }
}

impl HttpFile {
    pub(super) fn check(&self, p: &mut Problems) {
        p.check(
            (1..=300).contains(&self.head_timeout_secs),
            "http.head_timeout_secs: must be 1-300",
        );
        p.check(
            (1..=1_000_000).contains(&self.max_handshaking),
            "http.max_handshaking: must be 1-1000000",
        );
        p.check(
            (1..=self.max_handshaking.max(1)).contains(&self.max_handshaking_per_peer),
            "http.max_handshaking_per_peer: must be 1-max_handshaking",
        );
        p.check(
            (1..=1_000_000).contains(&self.max_connections_per_peer),
            "http.max_connections_per_peer: must be 1-1000000",
        );
        p.check(
            (1..=100_000).contains(&self.h2_max_concurrent_streams),
            "http.h2_max_concurrent_streams: must be 1-100000",
        );
        p.check(
            (1..=86_400).contains(&self.h2_idle_timeout_secs),
            "http.h2_idle_timeout_secs: must be 1-86400",
        );
    }

    pub(super) fn settings(&self) -> HttpSettings {
        HttpSettings {
            head_timeout: Duration::from_secs(self.head_timeout_secs),
            max_handshaking: self.max_handshaking,
            max_handshaking_per_peer: self.max_handshaking_per_peer,
            max_connections_per_peer: self.max_connections_per_peer,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            h2_idle_timeout: Duration::from_secs(self.h2_idle_timeout_secs),
        }
    }
}
