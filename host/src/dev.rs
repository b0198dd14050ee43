//! Dev mode: a complete host with no config file, so a newcomer can try the system in a
//! minute and scripts can drive it. The secrets are generated once and kept in a local
//! file, so `sse-host token --dev` issues tokens that every later `serve --dev` accepts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sse_policy::Secret;

/// `iss` of dev tokens.
pub const DEV_ISSUER: &str = "sse-host-dev";
/// `aud` of dev tokens.
pub const DEV_AUDIENCE: &str = "sse";
const FILE_NAME: &str = "dev-secrets.json";

/// The dev secrets: one signs tokens, one signs edge identities.
#[derive(Clone, Serialize, Deserialize)]
pub struct DevSecrets {
    jwt: String,
    edge: String,
}

impl std::fmt::Debug for DevSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevSecrets([redacted])")
    }
}

/// Where the dev secrets live: `$SSE_HOST_DEV_DIR`, else `$HOME/.local/state/sse-host`,
/// else `./.sse-host-dev`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SSE_HOST_DEV_DIR") {
        return dir.into();
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".local/state/sse-host"),
        None => PathBuf::from(".sse-host-dev"),
    }
}

fn random_secret() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(std::io::Error::other)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

impl DevSecrets {
    /// Reads the secrets from `dir`, creating them (mode 0600) on first use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::other(format!("{} is corrupt ({e}); delete it to start over", path.display()))
                })
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        std::fs::create_dir_all(dir)?;
        let secrets = Self {
            jwt: random_secret()?,
            edge: random_secret()?,
        };
        let tmp = dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(&secrets)?)?;
        f.sync_all()?;
        // Two first runs racing: hard_link fails for the loser, which then reads the winner's.
        let linked = std::fs::hard_link(&tmp, &path);
        std::fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => Ok(secrets),
            Err(_) => Self::load_or_create(dir),
        }
    }

    /// The dev policy JSON: dev mode on (test-broadcast open), HS256 dev tokens, the
    /// seed's channels, tokens from the header or the `sse_token` cookie.
    pub fn policy_json(&self) -> String {
        serde_json::json!({
            "jwt": { "issuers": [DEV_ISSUER], "audiences": [DEV_AUDIENCE], "hmac_secret": self.jwt },
            "routes": { "dev_mode": true },
            "edge": { "secret": self.edge },
        })
        .to_string()
    }

    /// A dev token for `company` with `role`, valid for `ttl`.
    pub fn token(&self, company: &str, role: &str, subject: &str, ttl: Duration) -> String {
        let now = crate::clock::unix_secs();
        // A `jti` per token, so the admin page can revoke one token.
        let mut id = [0u8; 9];
        let jti: String = match getrandom::getrandom(&mut id) {
            Ok(()) => id.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => String::new(), // no randomness: no jti rather than a shared one
        };
        let claims = serde_json::json!({
            "sub": subject, "company_id": company, "role": role, "jti": jti,
            "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now, "exp": now + ttl.as_secs(),
        });
        sse_policy::mint::hs256(&Secret::new(self.jwt.clone()), &claims)
    }
}

/// Parses durations like `90s`, `15m`, `1h`, `2d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (try 90s, 15m, 1h, 2d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("invalid duration unit in {s:?} (s, m, h or d)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_persist_and_tokens_verify_under_the_dev_policy() {
        let dir = std::env::temp_dir().join(format!("sse-dev-test-{}", std::process::id()));
        let a = DevSecrets::load_or_create(&dir).unwrap();
        let b = DevSecrets::load_or_create(&dir).unwrap();
        assert_eq!(a.jwt, b.jwt, "second run reuses the file");
        let policy = sse_policy::PolicyConfig::from_json(&a.policy_json()).unwrap();
        let token = a.token("acme", "VIEWER", "me", Duration::from_secs(60));
        let claims = sse_policy::jwt::verify(&token, &policy.jwt, crate::clock::unix_secs()).unwrap();
        assert_eq!(claims.company_id.as_deref(), Some("acme"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
