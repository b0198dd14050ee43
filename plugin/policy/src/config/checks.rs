//! Semantic checks of a parsed configuration. Each check appends a message naming the
//! field, so one run reports every problem.

use super::{RawConfig, MIN_SECRET_BYTES};

pub(super) fn check(raw: &RawConfig, problems: &mut Vec<String>) {
    check_tokens(raw, problems);
    check_channels(raw, problems);
    check_limits(raw, problems);
    check_routes(raw, problems);
    check_secrets(raw, problems);
    check_cors(raw, problems);
    let roles = &raw.roles;
    for (field, list) in [
        ("roles.super_admin", &roles.super_admin),
        ("roles.admin", &roles.admin),
        ("roles.publisher", &roles.publisher),
    ] {
        if list.iter().any(|r| !is_token_safe(r)) {
            problems.push(format!(
                "{field}: role names must be non-empty, without commas, spaces or control characters"
            ));
        }
    }
    // A cached token may be 8 KiB: 10,000 of them stay well inside a filter VM's memory.
    if raw.jwt.cache_size > 10_000 {
        problems.push(format!(
            "jwt.cache_size: {} is over the 10000 maximum",
            raw.jwt.cache_size
        ));
    }
    if raw.jwt.leeway_secs > 600 {
        problems.push(format!(
            "jwt.leeway_secs: {} is over the 600 s maximum",
            raw.jwt.leeway_secs
        ));
    }
    for (field, list) in [("jwt.issuers", &raw.jwt.issuers), ("jwt.audiences", &raw.jwt.audiences)] {
        if list.iter().any(String::is_empty) {
            problems.push(format!("{field}: entries must not be empty"));
        }
    }
}

/// A name that may travel in a comma-separated header value.
fn is_token_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

fn check_tokens(raw: &RawConfig, problems: &mut Vec<String>) {
    let t = &raw.tokens;
    if !t.authorization_header && t.cookie.is_none() && t.query_param.is_none() {
        problems.push("tokens: at least one token source must be enabled".into());
    }
    for (field, name) in [("tokens.cookie", &t.cookie), ("tokens.query_param", &t.query_param)] {
        if let Some(name) = name {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !ok {
                problems.push(format!(
                    "{field}: {name:?} is not a valid name (letters, digits, _ - .)"
                ));
            }
        }
    }
}

fn check_channels(raw: &RawConfig, problems: &mut Vec<String>) {
    if raw.channels.is_empty() {
        problems.push("channels: the whitelist must name at least one channel".into());
    }
    for (i, rule) in raw.channels.iter().enumerate() {
        if !is_token_safe(&rule.name) || rule.name.len() > 64 {
            problems.push(format!(
                "channels[{i}].name: {:?} must be 1-64 printable characters without commas",
                rule.name
            ));
        }
        if raw.channels[..i].iter().any(|c| c.name == rule.name) {
            problems.push(format!("channels[{i}].name: {:?} is listed twice", rule.name));
        }
        if rule.roles.iter().any(|r| !is_token_safe(r)) {
            problems.push(format!(
                "channels[{i}].roles: role names must be non-empty, without commas or spaces"
            ));
        }
    }
}

/// Bounds of a publish rate (events/s) and burst: the Redis publish script turns
/// `burst / rate` into a key's expiry.
pub const MIN_RATE: f64 = 0.001;
/// The fastest rate, and the largest burst.
pub const MAX_RATE: f64 = 1e9;
/// The longest history age a tier may keep (ten years, in seconds).
pub const MAX_HISTORY_AGE_SECS: u64 = 315_360_000;

fn check_limits(raw: &RawConfig, problems: &mut Vec<String>) {
    let l = &raw.limits;
    if l.max_connections_per_company == 0 {
        problems.push("limits.max_connections_per_company: must be at least 1".into());
    }
    if l.max_channels_per_stream == 0 || l.max_channels_per_stream > 64 {
        problems.push("limits.max_channels_per_stream: must be between 1 and 64".into());
    }
    if l.retry_after_secs == 0 || l.retry_after_secs > 3600 {
        problems.push("limits.retry_after_secs: must be between 1 and 3600".into());
    }
    if l.tiers.len() > 100 || l.company_tiers.len() > 100_000 {
        problems.push("limits: at most 100 tiers and 100000 companies in company_tiers".into());
    }
    for (name, tier) in &l.tiers {
        if name.is_empty() || name.len() > 64 {
            problems.push("limits.tiers: tier names are 1-64 characters".into());
        }
        if tier.max_connections_per_company == Some(0) {
            problems.push(format!(
                "limits.tiers.{name}.max_connections_per_company: must be at least 1"
            ));
        }
        if tier.history_size.is_some_and(|n| n > 100_000) {
            problems.push(format!("limits.tiers.{name}.history_size: must be at most 100000"));
        }
        if tier.channels.as_ref().is_some_and(Vec::is_empty) {
            problems.push(format!(
                "limits.tiers.{name}.channels: empty would lock its companies out (leave it out for all channels)"
            ));
        }
        if tier.history_max_age_secs.is_some_and(|a| a > MAX_HISTORY_AGE_SECS) {
            problems.push(format!(
                "limits.tiers.{name}.history_max_age_secs: must be at most {MAX_HISTORY_AGE_SECS} (ten years)"
            ));
        }
        for channel in tier.channels.iter().flatten() {
            if !raw.channels.iter().any(|c| &c.name == channel) {
                problems.push(format!(
                    "limits.tiers.{name}.channels: {channel:?} is not a whitelisted channel"
                ));
            }
        }
        // Bounded both ways: the Redis publish script turns them into a key's expiry.
        let rate_ok = tier
            .publish_rate_per_sec
            .is_none_or(|x| (MIN_RATE..=MAX_RATE).contains(&x));
        let burst_ok = tier.publish_burst.is_none_or(|b| (1.0..=MAX_RATE).contains(&b));
        if !rate_ok || !burst_ok {
            problems.push(format!(
                "limits.tiers.{name}: publish_rate_per_sec must be {MIN_RATE}-{MAX_RATE} and publish_burst 1-{MAX_RATE}"
            ));
        }
    }
    for (company, tier) in &l.company_tiers {
        if !l.tiers.contains_key(tier) {
            problems.push(format!(
                "limits.company_tiers.{company}: no tier named {tier:?} in limits.tiers"
            ));
        }
    }
}

fn check_routes(raw: &RawConfig, problems: &mut Vec<String>) {
    let p = &raw.routes.prefix;
    let ok = p.starts_with('/')
        && !p.ends_with('/')
        && p.len() > 1
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b));
    if !ok {
        problems.push(format!(
            "routes.prefix: {p:?} must start with / and not end with / (e.g. /sse)"
        ));
    }
}

/// Why `secret` cannot be used, if it cannot: a placeholder anyone who read the shipped
/// files knows (tokens minted with it would pass), an unexpanded `${NAME}`, or too short.
fn secret_problem(field: &str, secret: &str) -> Option<String> {
    let generate = "generate one with `openssl rand -base64 48`";
    if secret.to_ascii_lowercase().contains("replace-me") {
        return Some(format!(
            "{field}: is the shipped placeholder, known to anyone: {generate}"
        ));
    }
    if let Some(name) = secret.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
        return Some(format!(
            "{field}: ${{{name}}} was not replaced: set {name} ({generate})"
        ));
    }
    (secret.len() < MIN_SECRET_BYTES).then(|| {
        format!(
            "{field}: must be at least {MIN_SECRET_BYTES} bytes (got {}): {generate}",
            secret.len()
        )
    })
}

fn check_secrets(raw: &RawConfig, problems: &mut Vec<String>) {
    problems.extend(secret_problem("edge.secret", raw.edge.secret.expose_str()));
    if raw.edge.max_skew_secs == 0 || raw.edge.max_skew_secs > 300 {
        problems.push("edge.max_skew_secs: must be between 1 and 300".into());
    }
    let feed = &raw.edge.revocations;
    if !(100..=60_000).contains(&feed.refresh_ms) {
        problems.push("edge.revocations.refresh_ms: must be between 100 and 60000".into());
    }
    if !(100..=60_000).contains(&feed.timeout_ms) {
        problems.push("edge.revocations.timeout_ms: must be between 100 and 60000".into());
    }
    if feed.max_stale_secs.saturating_mul(1000) < u64::from(feed.refresh_ms) * 2 || feed.max_stale_secs > 3600 {
        problems.push("edge.revocations.max_stale_secs: must cover two refreshes and be at most 3600".into());
    }
    if feed.cluster.is_empty() || !feed.path.starts_with('/') {
        problems.push("edge.revocations: cluster must be named and path must start with /".into());
    }
    if let Some(s) = &raw.jwt.hmac_secret {
        problems.extend(secret_problem("jwt.hmac_secret", s.expose_str()));
    }
}

fn check_cors(raw: &RawConfig, problems: &mut Vec<String>) {
    let c = &raw.cors;
    for origin in &c.allowed_origins {
        if origin == "*" {
            if c.allow_credentials {
                problems.push("cors.allowed_origins: \"*\" cannot be combined with allow_credentials".into());
            }
        } else if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.ends_with('/')
            || origin.bytes().any(|b| b.is_ascii_control() || b == b' ')
        {
            problems.push(format!(
                "cors.allowed_origins: {origin:?} must be a scheme://host[:port] origin"
            ));
        }
    }
}
