//! Host configuration: one TOML file, overridden by environment and CLI flags, validated
//! as a whole before any port is bound (every problem reported at once).
//!
//! Each table has its own module with its file schema, its checks and the settings it
//! builds. Defaults are defined once, on the settings types (`HubSettings`,
//! `StreamSettings`, `VmLimits`, `RedisSettings`, ...); the file schema derives its
//! defaults from them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sse_policy::PolicyConfig;

use crate::hub::HubSettings;

mod backend;
mod env;
mod http;
mod publish;
mod stream;
mod tls;
mod wasm;

pub use crate::edge::WasmSettings;
pub use backend::{BackendKind, BackendSettings, RedisFile};
pub use http::{HttpFile, HttpSettings};
pub use publish::{PollFile, PollSettings, PublishFile, PublishSettings};
pub use stream::{HistoryFile, StreamFile, StreamSettings};
pub use tls::{TlsFile, TlsSettings};
pub use wasm::{default_cache_dir, default_filter_path, WasmFile, WasmPluginFile};

/// How the host learns who is calling (`edge = ...` in the file, `--edge` on the
/// command line: one type for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EdgeMode {
    /// The host runs `sse-policy` itself on every request (no proxy in front).
    #[default]
    Native,
    /// Envoy runs the filter; the host verifies its signed `x-sse-*` headers.
    Envoy,
    /// The embedded proxy-wasm host runs the filter in-process.
    Wasm,
}

/// How logs are written (`log_format = ...`, `--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
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
    /// Hub settings (history, queues, limits, stream lifetime).
    pub hub: HubSettings,
    /// Stream settings (heartbeats, `retry:`).
    pub stream: StreamSettings,
    /// Publish settings.
    pub publish: PublishSettings,
    /// Poll settings.
    pub poll: PollSettings,
    /// Connections before their first request.
    pub http: HttpSettings,
    /// How long shutdown waits for streams and requests to finish.
    pub shutdown_grace: Duration,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The embedded edge's filter chain (edge mode `wasm` only).
    pub wasm: Option<WasmSettings>,
    /// Where events live.
    pub backend: BackendSettings,
    /// Dev mode (`serve --dev`): dev endpoints on, and only loopback `Host`s answered.
    pub dev: bool,
    /// The host's own TLS (`[tls]`); plain HTTP without it.
    pub tls: Option<TlsSettings>,
    /// Threads that serve connections; `None`: one per core (`sse-host serve` builds its
    /// runtime with this; an embedder's runtime is its own).
    pub worker_threads: Option<usize>,
    /// Companies with their own series in `/metrics` (the most streams first); 0: none.
    pub metrics_top_companies: usize,
    /// The bearer token `/metrics` requires (from the environment variable
    /// `metrics_token_env` names); `None`: open.
    pub metrics_token: Option<sse_policy::Secret>,
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

/// Every problem found so far; validation goes on after the first one.
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, msg: &str) {
        if !ok {
            self.0.push(msg.to_owned());
        }
    }

    fn push(&mut self, msg: String) {
        self.0.push(msg);
    }
}

const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
/// More threads than this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

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
    /// `[http]`
    pub http: HttpFile,
    /// `shutdown_grace_secs = 10`
    pub shutdown_grace_secs: u64,
    /// `log_format = "text" | "json"`
    pub log_format: LogFormat,
    /// `worker_threads = 0`: threads serving connections; 0 is one per core.
    pub worker_threads: usize,
    /// `metrics_top_companies = 0`: companies with their own series in `/metrics` (their
    /// IDs become label values: only where tenants cannot reach `/metrics`).
    pub metrics_top_companies: usize,
    /// `metrics_token_env = "SSE_METRICS_TOKEN"`: the environment variable holding the
    /// bearer token `/metrics` then requires.
    pub metrics_token_env: Option<String>,
    /// `[wasm]`
    pub wasm: WasmFile,
    /// `backend = "memory" | "redis"`
    pub backend: BackendKind,
    /// `[redis]`
    pub redis: RedisFile,
    /// `[tls]`
    pub tls: TlsFile,
    /// Set by `serve --dev` only, never by a file: the one switch that allows a policy
    /// with `routes.dev_mode` (unauthenticated publishing) and dev endpoints.
    #[serde(skip)]
    pub dev: bool,
    /// Set by `serve --dev --dev-allow-remote`: dev mode may listen beyond loopback.
    #[serde(skip)]
    pub dev_allow_remote: bool,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4000".into(),
            edge: EdgeMode::default(),
            policy_file: None,
            stream: StreamFile::default(),
            history: HistoryFile::default(),
            publish: PublishFile::default(),
            poll: PollFile::default(),
            http: HttpFile::default(),
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            log_format: LogFormat::default(),
            worker_threads: 0,
            metrics_top_companies: 0,
            metrics_token_env: None,
            wasm: WasmFile::default(),
            backend: BackendKind::default(),
            redis: RedisFile::default(),
            tls: TlsFile::default(),
            dev: false,
            dev_allow_remote: false,
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
            if let Some(d) = cfg.wasm.cache_dir.as_mut() {
                resolve(d);
            }
            for f in [&mut cfg.tls.cert_file, &mut cfg.tls.key_file].into_iter().flatten() {
                resolve(f);
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
        let mut problems = Problems::default();
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| problems.push(format!("listen: {:?}: {e}", self.listen)))
            .ok();
        let (policy_json, secrets) = self.policy_json(policy_json, &mut problems);
        let policy = policy_json.as_deref().and_then(|j| {
            PolicyConfig::from_json(j)
                .map_err(|e| problems.push(env::redact(&format!("policy: {e}"), &secrets)))
                .ok()
        });
        self.stream.check(&mut problems);
        self.history.check(&mut problems);
        self.publish.check(&mut problems);
        self.poll.check(&mut problems);
        self.http.check(&mut problems);
        self.wasm.check(&mut problems);
        problems.check(
            self.shutdown_grace_secs <= 600,
            "shutdown_grace_secs: must be at most 600",
        );
        problems.check(
            self.worker_threads <= MAX_WORKER_THREADS,
            "worker_threads: must be at most 1024 (0: one per core)",
        );
        problems.check(
            self.metrics_top_companies <= 1000,
            "metrics_top_companies: must be at most 1000 (each is a set of series)",
        );
        let metrics_token =
            self.metrics_token_env
                .as_ref()
                .and_then(|name| match std::env::var(name).ok().filter(|t| t.len() >= 32) {
                    Some(t) => Some(sse_policy::Secret::new(t)),
                    None => {
                        problems.push(format!(
                            "metrics_token_env: ${name} must hold a token of at least 32 bytes"
                        ));
                        None
                    }
                });
        problems.check(
            self.metrics_top_companies == 0 || metrics_token.is_some() || self.edge == EdgeMode::Envoy,
            "metrics_top_companies names companies in /metrics: set metrics_token_env (Prometheus \
             sends it as its bearer token), or run behind Envoy (edge = \"envoy\"), which answers \
             /metrics itself",
        );
        let backend = self.redis.build(self.backend, &mut problems);
        let tls = self.tls.build(&mut problems);
        let wasm = match (self.edge, &policy_json) {
            (EdgeMode::Wasm, Some(json)) => Some(self.wasm.load(json, &mut problems)),
            _ => None,
        };
        if let Some(p) = &policy {
            problems.check(
                self.dev || !p.routes.dev_mode,
                "policy: routes.dev_mode opens unauthenticated publishing: only `sse-host serve --dev` may use it",
            );
        }
        if let (true, Some(addr)) = (self.dev, listen) {
            problems.check(
                addr.ip().is_loopback() || self.dev_allow_remote,
                "listen: dev mode mints tokens and publishes without one: it listens on loopback only \
                 (add --dev-allow-remote to expose it anyway)",
            );
        }
        let (Some(listen), Some(policy), true) = (listen, policy, problems.0.is_empty()) else {
            return Err(ConfigError::Invalid(problems.0));
        };
        let hub = stream::hub_settings(&self.stream, &self.history, &self.publish, &policy.limits);
        Ok(HostConfig {
            listen,
            edge: self.edge,
            policy,
            hub,
            stream: self.stream.settings(),
            publish: self.publish.settings(),
            poll: self.poll.settings(),
            http: self.http.settings(),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            log_format: self.log_format,
            wasm,
            backend,
            dev: self.dev,
            tls,
            worker_threads: (self.worker_threads > 0).then_some(self.worker_threads),
            metrics_top_companies: self.metrics_top_companies,
            metrics_token,
        })
    }

    /// The policy JSON: given by the caller (dev mode), or read from `policy_file` with
    /// its `${NAME}` placeholders taken from the environment; and the values taken (kept
    /// out of messages).
    fn policy_json(&self, given: Option<String>, problems: &mut Problems) -> (Option<String>, Vec<String>) {
        match (given, &self.policy_file) {
            (Some(json), _) => (Some(json), Vec::new()),
            (None, Some(path)) => {
                let Ok(text) = std::fs::read_to_string(path)
                    .map_err(|e| problems.push(format!("policy_file: cannot read {}: {e}", path.display())))
                else {
                    return (None, Vec::new());
                };
                match env::expand(&text, |name| std::env::var(name).ok()) {
                    Ok((json, used)) => (Some(json), used),
                    Err(missing) => {
                        missing.into_iter().for_each(|m| problems.push(m));
                        (None, Vec::new())
                    }
                }
            }
            (None, None) => {
                problems.push("policy_file: required (the edge policy JSON, as passed to the Envoy filter)".into());
                (None, Vec::new())
            }
        }
    }
}
