//! `PolicyConfig`: the JSON that Envoy passes as the filter `configuration` and that the
//! host reads for its native and embedded edges. Parsed strictly (unknown fields are
//! errors), then validated as a whole so one run reports every problem.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;

mod checks;

pub use checks::{MAX_HISTORY_AGE_SECS, MAX_RATE, MIN_RATE};

use crate::keys::KeySet;
use crate::secret::Secret;

/// The company-id rule of the seed: alphanumerics, `_` and `-`, 1 to 64 characters.
pub const DEFAULT_COMPANY_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// The seed's three channels.
pub const DEFAULT_CHANNELS: [&str; 3] = ["dashboard-updates", "evidence-updates", "report-updates"];
/// Clock skew tolerated on `exp`/`nbf`/`iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// How old a signed edge identity may be when the host checks it, in seconds.
pub const DEFAULT_EDGE_MAX_SKEW_SECS: u64 = 30;
/// The seed's `MAX_CONNECTIONS_PER_COMPANY`.
pub const DEFAULT_MAX_CONNECTIONS_PER_COMPANY: u32 = 100;
/// Shortest secret accepted for HMAC signing (RFC 7518 section 3.2 for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

/// The validated policy. Build it with [`PolicyConfig::from_json`].
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Where tokens are looked for.
    pub tokens: TokenSources,
    /// Token verification rules and keys.
    pub jwt: JwtRules,
    /// Company ids must match this anchored pattern.
    pub company_id: Regex,
    /// The channel whitelist, with the roles each channel admits.
    pub channels: Vec<ChannelRule>,
    /// Which token roles count as super-admin, admin and publisher.
    pub roles: Roles,
    /// Connection and subscription limits.
    pub limits: Limits,
    /// Route prefix and dev mode.
    pub routes: Routes,
    /// The secret that signs identities forwarded to the host.
    pub edge: EdgeSigning,
    /// CORS rules, applied to local replies too so browsers can read them.
    pub cors: Cors,
}

/// Token sources, tried in the order: header, cookie, query parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSources {
    /// Accept `Authorization: Bearer <token>`.
    pub authorization_header: bool,
    /// Cookie name that carries the token (what a native `EventSource` can send).
    pub cookie: Option<String>,
    /// Query parameter name (e.g. `access_token`). Off by default: URLs land in access
    /// logs. When on, the edge strips it before forwarding.
    pub query_param: Option<String>,
}

impl Default for TokenSources {
    fn default() -> Self {
        Self {
            authorization_header: true,
            cookie: Some("sse_token".into()),
            query_param: None,
        }
    }
}

/// Token verification rules.
#[derive(Debug, Clone)]
pub struct JwtRules {
    /// Accepted `iss` values; empty accepts any issuer.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (one must match); empty skips the audience check.
    pub audiences: Vec<String>,
    /// Clock skew tolerated, in seconds.
    pub leeway_secs: u64,
    /// Reject tokens without `exp` (on by default: access must not outlive the token).
    pub require_exp: bool,
    /// Verified tokens each edge keeps (per filter configuration in each VM, per host),
    /// to skip re-checking the signature of a token seen before; 0 turns the cache off;
    /// at most 10,000. See `cache`.
    pub cache_size: usize,
    /// The verification keys.
    pub keys: KeySet,
}

/// One whitelisted channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRule {
    /// Channel name as used in `channel=` (no CR, LF or comma).
    pub name: String,
    /// Roles that may subscribe; empty means every authenticated role of the company.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Role names as they appear in tokens' `role`/`roles` claims.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Roles {
    /// May cross companies and do anything an admin or publisher may.
    pub super_admin: Vec<String>,
    /// May read `/sse/stats`.
    pub admin: Vec<String>,
    /// May publish to its own company.
    pub publisher: Vec<String>,
}

impl Default for Roles {
    fn default() -> Self {
        Self {
            super_admin: vec!["SUPER_ADMIN".into()],
            admin: vec!["ADMIN".into()],
            publisher: vec!["PUBLISHER".into()],
        }
    }
}

/// Limits enforced at the edge (and again in the hub).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent streams per company (a company in a tier: its tier's).
    pub max_connections_per_company: u32,
    /// Named tiers of limits (`{"enterprise": {"max_connections_per_company": 5000}}`),
    /// so a big customer gets more room than a small one.
    pub tiers: BTreeMap<String, Tier>,
    /// Company ID → tier name. Companies not listed get the defaults above.
    pub company_tiers: BTreeMap<String, String>,
    /// Channels one stream may subscribe to.
    pub max_channels_per_stream: u32,
    /// `Retry-After` sent with 429 replies, in seconds.
    pub retry_after_secs: u32,
}

/// One tier: what it overrides of the defaults (the policy's connection limit, the
/// host's `[history]` and `[publish]` settings); what it leaves out stays the default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tier {
    /// Concurrent streams per company of this tier.
    pub max_connections_per_company: Option<u32>,
    /// Events kept per channel for resume.
    pub history_size: Option<usize>,
    /// Events older than this many seconds leave history (0: no age limit).
    pub history_max_age_secs: Option<u64>,
    /// Sustained events per second a company of this tier may publish.
    pub publish_rate_per_sec: Option<f64>,
    /// Its publish burst.
    pub publish_burst: Option<f64>,
    /// The channels its companies may use (stream, poll, publish), of the whitelist;
    /// absent: all of them.
    pub channels: Option<Vec<String>>,
}

impl Limits {
    /// The concurrent streams `company` may hold: its tier's limit, else the default.
    /// The filter and the host both ask this, so both edges apply the same number.
    pub fn connections_for(&self, company: &str) -> u32 {
        self.tier_of(company)
            .and_then(|t| t.max_connections_per_company)
            .unwrap_or(self.max_connections_per_company)
    }

    /// Whether `company` may use `channel` (its tier's `channels`, when it has one;
    /// the whitelist itself is checked apart).
    pub fn channel_allowed_for(&self, company: &str, channel: &str) -> bool {
        match self.tier_of(company).and_then(|t| t.channels.as_ref()) {
            Some(allowed) => allowed.iter().any(|c| c == channel),
            None => true,
        }
    }

    /// The tier `company` is in, if any.
    pub fn tier_of(&self, company: &str) -> Option<&Tier> {
        self.company_tiers.get(company).and_then(|tier| self.tiers.get(tier))
    }

    /// Every company in a tier, with its tier.
    pub fn tiered_companies(&self) -> impl Iterator<Item = (&str, &Tier)> {
        self.company_tiers
            .iter()
            .filter_map(|(company, tier)| Some((company.as_str(), self.tiers.get(tier)?)))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tiers: BTreeMap::new(),
            company_tiers: BTreeMap::new(),
            max_connections_per_company: DEFAULT_MAX_CONNECTIONS_PER_COMPANY,
            max_channels_per_stream: 8,
            retry_after_secs: 5,
        }
    }
}

/// Route rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routes {
    /// Prefix of every SSE route (the seed's `/sse`).
    pub prefix: String,
    /// Enables `POST {prefix}/test-broadcast` without a token. Never in production.
    pub dev_mode: bool,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            prefix: "/sse".into(),
            dev_mode: false,
        }
    }
}

/// The edge identity signature settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSigning {
    /// HMAC-SHA256 key shared by the edge and the host (at least 32 bytes).
    pub secret: Secret,
    /// Maximum age of a signed identity when the host checks it.
    #[serde(default = "default_edge_skew")]
    pub max_skew_secs: u64,
    /// Where and how often the filter fetches the revocation list.
    #[serde(default)]
    pub revocations: RevocationFeed,
}

/// How the filter learns revoked tokens: an HTTP callout to the host every `refresh_ms`.
/// The bound: a revocation reaches every edge within `refresh_ms` plus one callout; an
/// edge without a fresh list for `max_stale_secs` refuses identified requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationFeed {
    /// The proxy's upstream cluster of the host (Envoy: a cluster name in `envoy.yaml`).
    pub cluster: String,
    /// The host's feed path.
    pub path: String,
    /// How often each VM asks, in milliseconds.
    pub refresh_ms: u32,
    /// An older list than this fails closed.
    pub max_stale_secs: u64,
    /// Longest a callout may take, in milliseconds.
    pub timeout_ms: u32,
}

impl Default for RevocationFeed {
    fn default() -> Self {
        Self {
            cluster: "sse_host".into(),
            path: "/edge/revocations".into(),
            refresh_ms: 1000,
            max_stale_secs: 10,
            timeout_ms: 2000,
        }
    }
}

fn default_edge_skew() -> u64 {
    DEFAULT_EDGE_MAX_SKEW_SECS
}

/// CORS rules for browsers on other origins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// Exact origins allowed (`https://app.example.com`), or `*` without credentials.
    pub allowed_origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, Authorization).
    pub allow_credentials: bool,
    /// Preflight cache lifetime, in seconds.
    pub max_age_secs: u32,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: true,
            max_age_secs: 600,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The JSON did not parse or had unknown fields or wrong types.
    #[error("policy configuration is not valid JSON for this schema: {0}")]
    Syntax(String),
    /// The JSON parsed but some values are invalid; every problem is listed.
    #[error("invalid policy configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tokens: TokenSources,
    jwt: RawJwt,
    #[serde(default = "default_pattern")]
    company_id_pattern: String,
    #[serde(default = "default_channels")]
    channels: Vec<ChannelRule>,
    #[serde(default)]
    roles: Roles,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    routes: Routes,
    edge: EdgeSigning,
    #[serde(default)]
    cors: Cors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default = "default_leeway")]
    leeway_secs: u64,
    #[serde(default = "default_true")]
    require_exp: bool,
    #[serde(default = "default_cache_size")]
    cache_size: usize,
    hmac_secret: Option<Secret>,
    jwks: Option<serde_json::Value>,
}

fn default_pattern() -> String {
    DEFAULT_COMPANY_ID_PATTERN.into()
}
fn default_channels() -> Vec<ChannelRule> {
    DEFAULT_CHANNELS
        .iter()
        .map(|n| ChannelRule {
            name: (*n).into(),
            roles: Vec::new(),
        })
        .collect()
}
fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}
/// About 1 MiB per cache with identity-provider tokens of ~1 KiB (8 MiB at worst, with
/// 8 KiB tokens).
fn default_cache_size() -> usize {
    1024
}
fn default_true() -> bool {
    true
}

impl PolicyConfig {
    /// Parses and validates the configuration; on failure lists every problem found.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut problems = Vec::new();
        checks::check(&raw, &mut problems);
        let company_id = compile_pattern(&raw.company_id_pattern, &mut problems);
        if let Some(pattern) = &company_id {
            // A company that can never match would silently keep the default limits.
            for company in raw.limits.company_tiers.keys() {
                if !pattern.is_match(company) {
                    problems.push(format!(
                        "limits.company_tiers: {company:?} does not match company_id_pattern"
                    ));
                }
            }
        }
        let keys = KeySet::build(raw.jwt.hmac_secret.as_ref(), raw.jwt.jwks.as_ref(), &mut problems);
        match (company_id, problems.is_empty()) {
            (Some(company_id), true) => Ok(Self {
                tokens: raw.tokens,
                jwt: JwtRules {
                    issuers: raw.jwt.issuers,
                    audiences: raw.jwt.audiences,
                    leeway_secs: raw.jwt.leeway_secs,
                    require_exp: raw.jwt.require_exp,
                    cache_size: raw.jwt.cache_size,
                    keys,
                },
                company_id,
                channels: raw.channels,
                roles: raw.roles,
                limits: raw.limits,
                routes: raw.routes,
                edge: raw.edge,
                cors: raw.cors,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }

    /// What is valid but weaker than a reviewer would expect outside dev mode: an empty
    /// `jwt.issuers` or `jwt.audiences` accepts tokens the keys signed for any issuer or
    /// any service. Logged at start by the filter and the host, and by `check-config`.
    pub fn warnings(&self) -> Vec<String> {
        if self.routes.dev_mode {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.jwt.issuers.is_empty() {
            out.push("jwt.issuers is empty: tokens from any issuer the keys signed are accepted".to_owned());
        }
        if self.jwt.audiences.is_empty() {
            out.push(
                "jwt.audiences is empty: tokens meant for any service the keys signed for are accepted".to_owned(),
            );
        }
        out
    }

    /// The rule for a whitelisted channel, if any.
    pub fn channel(&self, name: &str) -> Option<&ChannelRule> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// True when `id` is a well-formed company id.
    pub fn is_valid_company_id(&self, id: &str) -> bool {
        self.company_id.is_match(id)
    }
}

fn compile_pattern(pattern: &str, problems: &mut Vec<String>) -> Option<Regex> {
    if !pattern.starts_with('^') || !pattern.ends_with('$') {
        problems.push("company_id_pattern: must be anchored with ^ and $".into());
        return None;
    }
    match Regex::new(pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            problems.push(format!("company_id_pattern: {e}"));
            None
        }
    }
}
