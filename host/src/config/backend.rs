//! `backend = "memory" | "redis"` and the `[redis]` table.

use std::time::Duration;

use serde::Deserialize;

use super::Problems;
use crate::backend::redis::RedisSettings;

/// Which event store the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// History in this process (one host).
    #[default]
    Memory,
    /// Redis Streams shared by several hosts.
    Redis,
}

/// The backend as configured and validated.
#[derive(Debug, Clone)]
pub enum BackendSettings {
    /// In-process history.
    Memory,
    /// Redis Streams.
    Redis(RedisSettings),
}

/// `[redis]` table (used when `backend = "redis"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisFile {
    /// `redis://[user:password@]host:port[/db]` (default `redis://127.0.0.1:6379`); with
    /// `sentinels`, `redis://[user:password@]MASTER_NAME[/db]`; not with `cluster`.
    pub url: Option<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Seconds a node's lease lives without renewal (its slots expire after it).
    pub lease_ttl_secs: u64,
    /// Longest blocking read, in ms.
    pub block_ms: u64,
    /// Entries read per stream per round.
    pub read_count: usize,
    /// Reader tasks (and connections) per host, each following a share of the companies.
    pub readers: usize,
    /// `"blocking"` (XREAD BLOCK over every followed stream) or `"announced"` (wait on
    /// the publishes' announcements; always so on a cluster).
    pub reader: String,
    /// Seed nodes of a Redis Cluster (then there is no `url`).
    pub cluster: Vec<String>,
    /// Sentinels that name the master (then `url` names the master, not its address).
    pub sentinels: Vec<String>,
    /// Replicas that must confirm a publish (`WAIT`) before it is acknowledged; 0: none.
    pub min_replicas_ack: u32,
    /// Longest a publish waits for them, in ms.
    pub min_replicas_timeout_ms: u64,
}

impl Default for RedisFile {
    fn default() -> Self {
        let d = RedisSettings::default();
        Self {
            url: None,
            key_prefix: d.key_prefix,
            lease_ttl_secs: d.lease_ttl.as_secs(),
            block_ms: d.block.as_millis() as u64,
            read_count: d.read_count,
            readers: d.readers,
            reader: if d.announced { "announced" } else { "blocking" }.into(),
            cluster: d.cluster,
            sentinels: d.sentinels,
            min_replicas_ack: d.min_replicas_ack,
            min_replicas_timeout_ms: d.min_replicas_timeout.as_millis() as u64,
        }
    }
}

impl RedisFile {
    /// Validates the table for `kind`, pushing every problem.
    pub(super) fn build(&self, kind: BackendKind, p: &mut Problems) -> BackendSettings {
        if kind == BackendKind::Memory {
            return BackendSettings::Memory;
        }
        let url = self.url_checked(p);
        p.check(
            !self.key_prefix.is_empty() && !self.key_prefix.contains(['{', '}', ' ']),
            "redis.key_prefix: must be non-empty, without braces or spaces",
        );
        p.check(
            (2..=3600).contains(&self.lease_ttl_secs),
            "redis.lease_ttl_secs: must be 2-3600",
        );
        p.check(
            (10..=60_000).contains(&self.block_ms),
            "redis.block_ms: must be 10-60000",
        );
        p.check(
            (1..=100_000).contains(&self.read_count),
            "redis.read_count: must be 1-100000",
        );
        p.check(self.min_replicas_ack <= 16, "redis.min_replicas_ack: must be 0-16");
        p.check((1..=64).contains(&self.readers), "redis.readers: must be 1-64");
        p.check(
            matches!(self.reader.as_str(), "blocking" | "announced"),
            "redis.reader: must be \"blocking\" or \"announced\"",
        );
        p.check(
            self.cluster.iter().all(|u| redis_url(u)),
            "redis.cluster: every seed node must be redis://HOST:PORT",
        );
        // A Sentinel's port is not Redis's default, and it has no databases.
        let sentinel_ok = |u: &String| redis_url(u) && port_given(u) && db_of(u) == Some(0);
        p.check(
            self.sentinels.iter().all(sentinel_ok),
            "redis.sentinels: every Sentinel must be redis://HOST:PORT (a port, no database)",
        );
        p.check(
            (10..=60_000).contains(&self.min_replicas_timeout_ms),
            "redis.min_replicas_timeout_ms: must be 10-60000",
        );
        BackendSettings::Redis(RedisSettings {
            url,
            key_prefix: self.key_prefix.clone(),
            lease_ttl: Duration::from_secs(self.lease_ttl_secs),
            block: Duration::from_millis(self.block_ms),
            read_count: self.read_count,
            readers: self.readers,
            announced: self.reader == "announced",
            cluster: self.cluster.clone(),
            sentinels: self.sentinels.clone(),
            min_replicas_ack: self.min_replicas_ack,
            min_replicas_timeout: Duration::from_millis(self.min_replicas_timeout_ms),
        })
    }

    /// `url` as the topology needs it: not with a cluster (its seeds find it), the
    /// master's name behind Sentinel, an address otherwise (the default one if none).
    fn url_checked(&self, p: &mut Problems) -> String {
        if !self.cluster.is_empty() {
            p.check(
                self.sentinels.is_empty(),
                "redis.sentinels: not with redis.cluster (a cluster fails over by itself)",
            );
            p.check(
                self.url.is_none(),
                "redis.url: not with redis.cluster (the seed nodes find the cluster); remove it",
            );
            return String::new();
        }
        let Some(url) = &self.url else {
            p.check(
                self.sentinels.is_empty(),
                "redis.url: with redis.sentinels, name the master: redis://[:PASSWORD@]MASTER_NAME[/DB]",
            );
            return RedisSettings::default().url;
        };
        if self.sentinels.is_empty() {
            p.check(
                redis_url(url),
                "redis.url: must be redis://HOST:PORT[/DB] (give --redis redis://HOST:PORT)",
            );
        } else {
            // The master's address comes from the Sentinels: a port here would be ignored.
            p.check(
                redis_url(url) && !port_given(url),
                "redis.url: with redis.sentinels, name the master: redis://[:PASSWORD@]MASTER_NAME[/DB] (no port)",
            );
        }
        url.clone()
    }
}

/// A `redis://` URL this build can open (it has no TLS: `rediss://` is refused here, not
/// at the first connect).
fn redis_url(u: &str) -> bool {
    u.starts_with("redis://") && redis::Client::open(u).is_ok()
}

/// `host:port` of a URL (after any `user:password@`, before any `/db`).
fn authority(u: &str) -> &str {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or_default();
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

/// Whether the URL names a port.
fn port_given(u: &str) -> bool {
    authority(u)
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// The URL's database number (0 when none is given).
fn db_of(u: &str) -> Option<i64> {
    redis::Client::open(u)
        .ok()
        .map(|c| c.get_connection_info().redis_settings().db())
}
