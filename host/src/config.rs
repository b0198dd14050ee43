//! Host configuration: one TOML file, overridden by environment and CLI flags, validated
//! as a whole before any port is bound (every problem reported at once).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sse_policy::PolicyConfig;

use crate::hub::HubSettings;

mod backend;
mod wasm;

pub use backend::{BackendKind, BackendSettings, RedisFile};
pub use wasm::{default_filter_path, WasmFile, WasmPluginFile, WasmSettings};

/// How the host learns who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeMode {
    /// The host runs `sse-policy` itself on every request (no proxy in front).
    Native,
    /// Envoy runs the filter; the host verifies its signed `x-sse-*` headers.
    Envoy,
    /// The embedded proxy-wasm host runs the filter in-process.
    Wasm,
}

impl std::str::FromStr for EdgeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Self::Native),
            "envoy" => Ok(Self::Envoy),
            "wasm" => Ok(Self::Wasm),
            _ => Err(format!("edge must be native, envoy or wasm (got {s:?})")),
        }
    }
}

/// The whole host configuration.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Edge mode.
    pub edge: EdgeMode,
    /// The edge policy (the same JSON Envoy passes to the filter).
    pub policy: PolicyConfig,
    /// Hub settings (history, queues, limits).
    pub hub: HubSettings,
    /// Stream settings.
    pub stream: StreamSettings,
    /// Publish settings.
    pub publish: PublishSettings,
    /// Longest long-poll wait.
    pub poll_max_wait: Duration,
    /// Most events one poll returns.
    pub poll_max_limit: usize,
    /// How long shutdown waits for streams and requests to finish.
    pub shutdown_grace: Duration,
    /// Logs as JSON lines instead of text.
    pub log_json: bool,
    /// The embedded edge's filter chain (edge mode `wasm` only).
    pub wasm: Option<WasmSettings>,
    /// Where events live.
    pub backend: BackendSettings,
}

/// Stream behaviour.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// Send heartbeats as `event: heartbeat` instead of a comment (visible to EventSource).
    pub heartbeat_event: bool,
    /// The `retry:` sent at the start of every stream, in ms.
    pub retry_ms: u64,
    /// Streams end after this long (then the client reconnects and resumes).
    pub max_lifetime: Duration,
}

/// Publish behaviour.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Sustained events per second per company.
    pub rate_per_sec: f64,
    /// Burst allowance per company.
    pub burst: f64,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Syntax or schema errors (TOML), or invalid values; every problem listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The TOML file's schema. Every field has a default, so an empty file plus a policy is
/// a complete configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `listen = "127.0.0.1:4000"`
    pub listen: String,
    /// `edge = "native" | "envoy" | "wasm"`
    pub edge: EdgeMode,
    /// Path of the policy JSON, relative to the config file.
    pub policy_file: Option<PathBuf>,
    /// `[stream]`
    pub stream: StreamFile,
    /// `[history]`
    pub history: HistoryFile,
    /// `[publish]`
    pub publish: PublishFile,
    /// `[poll]`
    pub poll: PollFile,
    /// `shutdown_grace_secs = 10`
    pub shutdown_grace_secs: u64,
    /// `log_format = "text" | "json"`
    pub log_format: String,
    /// `[wasm]`
    pub wasm: WasmFile,
    /// `backend = "memory" | "redis"`
    pub backend: BackendKind,
    /// `[redis]`
    pub redis: RedisFile,
}

/// `[stream]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamFile {
    /// Seconds between heartbeats (the seed's 30).
    pub heartbeat_secs: u64,
    /// Heartbeat as a named event rather than a comment.
    pub heartbeat_event: bool,
    /// `retry:` hint in ms.
    pub retry_ms: u64,
    /// Longest stream lifetime in seconds.
    pub max_lifetime_secs: u64,
    /// Pending frames per subscriber before it counts as slow.
    pub queue_capacity: usize,
    /// Streams on this host.
    pub max_connections: u32,
}

/// `[history]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryFile {
    /// Events kept per channel.
    pub size: usize,
    /// Maximum event age in seconds (0: no age limit).
    pub max_age_secs: u64,
    /// Seconds before an unused channel is dropped.
    pub idle_channel_secs: u64,
}

/// `[publish]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishFile {
    /// Largest event payload in bytes.
    pub max_event_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Sustained events/s per company.
    pub rate_per_sec: f64,
    /// Burst per company.
    pub burst: f64,
}

/// `[poll]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollFile {
    /// Longest `wait` in seconds.
    pub max_wait_secs: u64,
    /// Largest `limit`.
    pub max_limit: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4000".into(),
            edge: EdgeMode::Native,
            policy_file: None,
            stream: StreamFile::default(),
            history: HistoryFile::default(),
            publish: PublishFile::default(),
            poll: PollFile::default(),
            shutdown_grace_secs: 10,
            log_format: "text".into(),
            wasm: WasmFile::default(),
            backend: BackendKind::Memory,
            redis: RedisFile::default(),
        }
    }
}

impl Default for StreamFile {
    fn default() -> Self {
        Self {
            heartbeat_secs: 30,
            heartbeat_event: false,
            retry_ms: 3000,
            max_lifetime_secs: 3600,
            queue_capacity: 256,
            max_connections: 15_000,
        }
    }
}

impl Default for HistoryFile {
    fn default() -> Self {
        Self {
            size: 100,
            max_age_secs: 0,
            idle_channel_secs: 300,
        }
    }
}

impl Default for PublishFile {
    fn default() -> Self {
        Self {
            max_event_bytes: 64 * 1024,
            max_body_bytes: 1024 * 1024,
            rate_per_sec: 1000.0,
            burst: 2000.0,
        }
    }
}

impl Default for PollFile {
    fn default() -> Self {
        Self {
            max_wait_secs: 30,
            max_limit: 100,
        }
    }
}

impl FileConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid(vec![e.to_string()]))
    }

    /// Reads and parses a TOML file; a relative `policy_file` is resolved against it.
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        let mut cfg = Self::from_toml(&text)?;
        if let Some(dir) = path.parent() {
            let resolve = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            if let Some(p) = cfg.policy_file.as_mut() {
                resolve(p);
            }
            for plugin in &mut cfg.wasm.plugins {
                resolve(&mut plugin.path);
                if let Some(c) = plugin.configuration_file.as_mut() {
                    resolve(c);
                }
            }
        }
        Ok(cfg)
    }

    /// Validates everything and loads the policy (from `policy_json` when given, else
    /// from `policy_file`).
    pub fn build(self, policy_json: Option<String>) -> Result<HostConfig, ConfigError> {
        let mut problems = Vec::new();
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| problems.push(format!("listen: {:?}: {e}", self.listen)))
            .ok();
        let policy_json = match (policy_json, &self.policy_file) {
            (Some(json), _) => Some(json),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| problems.push(format!("policy_file: cannot read {}: {e}", path.display())))
                .ok(),
            (None, None) => {
                problems.push("policy_file: required (the edge policy JSON, as passed to the Envoy filter)".into());
                None
            }
        };
        let policy = policy_json.clone().and_then(|j| {
            PolicyConfig::from_json(&j)
                .map_err(|e| problems.push(format!("policy: {e}")))
                .ok()
        });
        let s = &self.stream;
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                problems.push(msg.to_owned());
            }
        };
        check(
            (1..=3600).contains(&s.heartbeat_secs),
            "stream.heartbeat_secs: must be 1-3600",
        );
        check(
            (100..=600_000).contains(&s.retry_ms),
            "stream.retry_ms: must be 100-600000",
        );
        check(
            s.max_lifetime_secs >= 10,
            "stream.max_lifetime_secs: must be at least 10",
        );
        check(
            (1..=65_536).contains(&s.queue_capacity),
            "stream.queue_capacity: must be 1-65536",
        );
        check(s.max_connections >= 1, "stream.max_connections: must be at least 1");
        check(self.history.size <= 100_000, "history.size: must be at most 100000");
        check(
            self.history.idle_channel_secs >= 1,
            "history.idle_channel_secs: must be at least 1",
        );
        let p = &self.publish;
        check(
            (1..=16 * 1024 * 1024).contains(&p.max_event_bytes),
            "publish.max_event_bytes: must be 1 B-16 MiB",
        );
        check(
            p.max_body_bytes >= p.max_event_bytes,
            "publish.max_body_bytes: must be at least max_event_bytes",
        );
        check(
            p.rate_per_sec > 0.0 && p.burst >= 1.0,
            "publish.rate_per_sec must be > 0 and publish.burst >= 1",
        );
        check(
            (1..=300).contains(&self.poll.max_wait_secs),
            "poll.max_wait_secs: must be 1-300",
        );
        check(
            (1..=10_000).contains(&self.poll.max_limit),
            "poll.max_limit: must be 1-10000",
        );
        check(
            self.shutdown_grace_secs <= 600,
            "shutdown_grace_secs: must be at most 600",
        );
        check(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format: must be \"text\" or \"json\"",
        );
        check(
            (1..=10_000).contains(&self.wasm.call_timeout_ms),
            "wasm.call_timeout_ms: must be 1-10000",
        );
        check(
            (1..=4096).contains(&self.wasm.memory_limit_mb),
            "wasm.memory_limit_mb: must be 1-4096",
        );
        let backend = self.redis.build(self.backend, &mut problems);
        let wasm = match (self.edge, &policy_json) {
            (EdgeMode::Wasm, Some(json)) => Some(self.wasm.load(json, &mut problems)),
            _ => None,
        };
        let (Some(listen), Some(policy), true) = (listen, policy, problems.is_empty()) else {
            return Err(ConfigError::Invalid(problems));
        };
        let hub = HubSettings {
            history_size: self.history.size,
            history_max_age: (self.history.max_age_secs > 0).then(|| Duration::from_secs(self.history.max_age_secs)),
            queue_capacity: s.queue_capacity,
            max_event_bytes: p.max_event_bytes,
            max_connections_per_company: policy.limits.max_connections_per_company,
            max_connections: s.max_connections,
            idle_timeout: Duration::from_secs(self.history.idle_channel_secs),
        };
        Ok(HostConfig {
            listen,
            edge: self.edge,
            policy,
            hub,
            stream: StreamSettings {
                heartbeat: Duration::from_secs(s.heartbeat_secs),
                heartbeat_event: s.heartbeat_event,
                retry_ms: s.retry_ms,
                max_lifetime: Duration::from_secs(s.max_lifetime_secs),
            },
            publish: PublishSettings {
                max_body_bytes: p.max_body_bytes,
                rate_per_sec: p.rate_per_sec,
                burst: p.burst,
            },
            poll_max_wait: Duration::from_secs(self.poll.max_wait_secs),
            poll_max_limit: self.poll.max_limit,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            log_json: self.log_format == "json",
            wasm,
            backend,
        })
    }
}
